"""Staff SSH access to a student's workspace: a short-lived certificate from the course CA, never the student's key.

Owner, instructors and the head TA only (TAs are read-only); each certificate is audited by the service.
"""

from __future__ import annotations

from flask import Blueprint, abort, request

from classroom.models import Workspace
from classroom.roles import can_act
from lti_app.auth import current, requires
from lti_app.pages.views import page
from lti_app.runtime import commit, db, settings
from provisioning.ssh_ca import issue_staff_certificate, workspace_login
from provisioning.ssh_keys import SshKeyError

bp = Blueprint("staff_ssh", __name__)


def _student_workspace(ws_id: int) -> Workspace:
    ws = db().get(Workspace, ws_id)
    if ws is None or ws.course_id != current().course.id:
        abort(404)
    return ws


def _command(ws: Workspace) -> str:
    s = settings()
    if s.runtime_ssh_port and s.aws_endpoint_url and not s.is_production:
        return f"ssh -p {s.runtime_ssh_port} -i ~/.ssh/id_ed25519 {workspace_login(ws.id)}@127.0.0.1"
    return f"ssh -i ~/.ssh/id_ed25519 ubuntu@{ws.public_ip or '<instance address>'}"


@bp.get("/app/workspaces/<int:ws_id>/ssh-certificate")
@requires(can_act)
def form(ws_id: int) -> tuple[str, int]:
    """The form: paste your public key, choose the session's length."""
    ws = _student_workspace(ws_id)
    return page("workspaces/ssh_cert.html", ws=ws, login=workspace_login(ws.id), cert="", command="", error=""), 200


@bp.post("/app/workspaces/<int:ws_id>/ssh-certificate")
@requires(can_act)
def issue(ws_id: int) -> tuple[str, int]:
    """Sign the staff member's key for this workspace's login, for the session only."""
    ws, ctx = _student_workspace(ws_id), current()
    minutes = request.form.get("minutes", "30")
    try:
        if not minutes.isdigit():
            raise SshKeyError("The session length is a number of minutes.")
        cert, _ = issue_staff_certificate(db(), settings=settings(), workspace=ws, staff_person_id=ctx.person.id,
                                          staff_name=ctx.person.name, public_key=request.form.get("public_key", ""),
                                          minutes=int(minutes))  # fmt: skip
    except SshKeyError as exc:
        return page("workspaces/ssh_cert.html", ws=ws, login=workspace_login(ws.id), cert="", command="",
                    error=str(exc)), 400  # fmt: skip
    commit()
    return page("workspaces/ssh_cert.html", ws=ws, login=workspace_login(ws.id), cert=cert, command=_command(ws),
                error=""), 200  # fmt: skip
