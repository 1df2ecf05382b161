"""The browser terminal's pages: open my terminal, share it with staff, watch a shared one (staff).

This app only decides who may open what and hands out one-time tickets (classroom/services/terminal.py); the
terminal traffic goes to the gateway (provisioning/gateway). A student opens a shell on their own workspace only;
staff of the course may watch (never type in) a terminal its student is sharing; every watch is audited.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, abort, jsonify, request, url_for
from limits import parse

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import DebugSession, Person, Workspace
from classroom.roles import can_act, is_staff
from classroom.services.debug_sessions import is_live, session_label
from classroom.services.terminal import (
    Mode,
    Share,
    Ticket,
    debug_credentials,
    issue_ticket,
    shared,
    shared_in_course,
    start_sharing,
    stop_sharing,
)
from classroom.workspaces.host_keys import current_pin
from lti_app.auth import current, requires
from lti_app.pages.views import page
from lti_app.rate_limits import allow
from lti_app.runtime import commit, db, runtime, settings
from provisioning.gateway.connect import target_of, why_not_running
from provisioning.instance_ssh import WorkspaceSshError, ec2_endpoint

bp = Blueprint("terminal", __name__)
# Tickets one person may ask for (shells, watches and debug terminals together): a page opening, its reconnects
# (terminal.js retries 5 times) and a few tabs fit many times over; a script or a stuck reload loop gets 429s.
TICKETS_PER_PERSON = parse("20/minute")
TOO_MANY = "Too many terminal connections in the last minute. Wait a minute, then open the terminal again."


def _too_many(person_id: int) -> bool:
    """Count one ticket request against the person; True past TICKETS_PER_PERSON (nothing is issued then)."""
    return not allow(TICKETS_PER_PERSON, "terminal-ticket", str(person_id))


def terminal_enabled() -> bool:
    """A gateway runs (it reaches the local runtime's workspaces and EC2 instances by their pinned host keys)."""
    return bool(settings().terminal_url)


def unreachable(ws: Workspace) -> str:
    """Why the gateway cannot reach this workspace's machine now ("" when it can try): on EC2, no pinned host key
    yet, a changed one, or no address. The local runtime's workspaces are checked by the gateway itself."""
    s = settings()
    if target_of(s) is not None and not current_pin(ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.instance_id):
        return ""
    try:
        ec2_endpoint(ws, port=s.workspace_ssh_port)
    except WorkspaceSshError as exc:
        return str(exc)
    return ""


def terminal_origin() -> str:
    """The gateway's origin for the pages' Content-Security-Policy (connect-src)."""
    if not terminal_enabled():
        return ""
    parts = urlsplit(settings().terminal_url)
    return f"{parts.scheme}://{parts.netloc}"


def _workspace(ws_id: int) -> Workspace:
    ws = db().get(Workspace, ws_id)
    if ws is None or ws.course_id != current().course.id:
        abort(404)
    return ws


def _owner_or_staff(ws: Workspace) -> bool:
    """True for the owner, False for staff of the course; anyone else gets 404 (no hint the workspace exists)."""
    ctx = current()
    if ws.person_id == ctx.person.id:
        return True
    if is_staff(ctx.level):
        return False
    abort(404)


@bp.get("/app/workspaces/<int:ws_id>/terminal")
@requires()
def open_page(ws_id: int) -> tuple[str, int]:
    """The terminal page: the owner's shell, or staff's view of a shared one."""
    ws = _workspace(ws_id)
    owner = _owner_or_staff(ws)
    student = db().get(Person, ws.person_id)
    share = shared(runtime().redis, ws.id)
    why = why_not_running(db(), ws)
    return page("workspaces/terminal.html", ws=ws, owner=owner, enabled=terminal_enabled(), state_message=why,
                student_name=student.display_name if student else "", shared=share is not None, debug=None,
                ticket_url=url_for("terminal.ticket", ws_id=ws.id)), 200  # fmt: skip


@bp.post("/app/workspaces/<int:ws_id>/terminal/ticket")
@requires()
def ticket(ws_id: int) -> tuple[Response, int]:
    """A one-time ticket and the URL to open (JSON); 409 with a message when the terminal cannot open now."""
    ws, ctx = _workspace(ws_id), current()
    owner = _owner_or_staff(ws)
    if _too_many(ctx.person.id):
        return jsonify(message=TOO_MANY), 429
    if not terminal_enabled():
        return jsonify(message="The browser terminal is not available here; use SSH."), 409
    if owner and (why := why_not_running(db(), ws)):  # not running, or locked for its archive
        return jsonify(message=why), 409
    if owner and (why := unreachable(ws)):
        return jsonify(message=why), 409
    if not owner:
        share = shared(runtime().redis, ws.id)
        if share is None or share.owner_person_id != ws.person_id:
            return jsonify(message="The student is not sharing their terminal right now."), 409
        append_event(db(), "terminal.watch", actor_person_id=ctx.person.id, course_id=ws.course_id,
                     subject=f"workspace:{ws.id}", details={"student_person_id": ws.person_id})  # fmt: skip
        commit()
    grant = Ticket(person_id=ctx.person.id, person_name=ctx.person.display_name, course_id=ws.course_id,
                   workspace_id=ws.id, owner_person_id=ws.person_id, mode=Mode.SHELL if owner else Mode.WATCH,
                   staff=not owner)  # fmt: skip
    token = issue_ticket(runtime().redis, grant)
    query = {"ticket": token, "cols": request.form.get("cols", "80"), "rows": request.form.get("rows", "24")}
    return jsonify(url=f"{settings().terminal_url}?{urlencode(query)}", mode=grant.mode.value), 200


@bp.post("/app/workspaces/<int:ws_id>/terminal/share")
@requires()
def share(ws_id: int) -> tuple[Response, int]:
    """The owner starts or stops sharing their terminal with the course's staff (view only)."""
    ws, ctx = _workspace(ws_id), current()
    if ws.person_id != ctx.person.id:
        abort(404)
    action = request.form.get("action", "")
    if action not in ("start", "stop"):
        return jsonify(message="Choose to start or stop sharing."), 400
    redis = runtime().redis
    if action == "start":
        start_sharing(redis, Share(ws.id, ws.person_id, ctx.person.display_name, ws.course_id))
    else:
        stop_sharing(redis, ws.id, ws.course_id)
    append_event(db(), f"terminal.share.{action}", actor_person_id=ctx.person.id, course_id=ws.course_id,
                 subject=f"workspace:{ws.id}", details={})  # fmt: skip
    commit()
    return jsonify(shared=action == "start"), 200


@bp.get("/app/terminals/shared")
@requires(is_staff)
def shared_list() -> tuple[str, int]:
    """Staff: the terminals students of this course are sharing now."""
    shares = shared_in_course(runtime().redis, current().course.id)
    return page("workspaces/terminals_shared.html", shares=shares), 200


def _my_debug_session(session_id: int) -> DebugSession:
    """A debug session of this course opened by the person asking (nobody else drives its terminal)."""
    ds = db().get(DebugSession, session_id)
    if ds is None or ds.course_id != current().course.id or ds.staff_person_id != current().person.id:
        abort(404)
    return ds


@bp.get("/app/debug-sessions/<int:session_id>/terminal")
@requires(can_act)
def debug_terminal(session_id: int) -> tuple[str, int]:
    """A debug session (TA-tools) in the browser terminal: the session's mode, banner and recording, as over SSH."""
    ds = _my_debug_session(session_id)
    ws = db().get(Workspace, ds.workspace_id)
    student = db().get(Person, ds.student_person_id)
    live = is_live(ds, utcnow()) and debug_credentials(runtime().redis, ds.id) is not None
    why = "" if live else f"Debug session {session_label(ds.id)} has ended (or was opened for an SSH client)."
    return page("workspaces/terminal.html", ws=ws, owner=True, enabled=terminal_enabled(), state_message=why,
                student_name=student.display_name if student else "", shared=False, debug=ds,
                ticket_url=url_for("terminal.debug_ticket", session_id=ds.id)), 200  # fmt: skip


@bp.post("/app/debug-sessions/<int:session_id>/terminal/ticket")
@requires(can_act)
def debug_ticket(session_id: int) -> tuple[Response, int]:
    """A one-time ticket for the debug session's shell; every connection is audited."""
    ds, ctx = _my_debug_session(session_id), current()
    if _too_many(ctx.person.id):
        return jsonify(message=TOO_MANY), 429
    creds = debug_credentials(runtime().redis, ds.id) if is_live(ds, utcnow()) else None
    if creds is None or not terminal_enabled():
        return jsonify(message=f"Debug session {session_label(ds.id)} has ended; open a new one."), 409
    ws = db().get(Workspace, ds.workspace_id)
    if ws is None or (why := unreachable(ws)):
        return jsonify(message=why or "This workspace does not exist."), 409
    append_event(db(), "terminal.debug.connect", actor_person_id=ctx.person.id, course_id=ds.course_id,
                 subject=str(ds.student_person_id), details={"session": session_label(ds.id)})  # fmt: skip
    commit()
    grant = Ticket(person_id=ctx.person.id, person_name=ctx.person.display_name, course_id=ds.course_id,
                   workspace_id=ds.workspace_id, owner_person_id=ctx.person.id, mode=Mode.DEBUG, staff=True,
                   debug_session_id=ds.id, private_key=creds[0], certificate=creds[1])  # fmt: skip
    token = issue_ticket(runtime().redis, grant)
    query = {"ticket": token, "cols": request.form.get("cols", "80"), "rows": request.form.get("rows", "24")}
    return jsonify(url=f"{settings().terminal_url}?{urlencode(query)}", mode=grant.mode.value), 200
