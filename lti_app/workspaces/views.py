"""The student's workspace: first click, progress, how to connect, start and stop with confirmation."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, jsonify, redirect, url_for

from classroom.budget.policy import Decision
from classroom.models import CoursePolicy, Workspace
from classroom.roles import StaffLevel, can_act, is_staff
from classroom.services.budgets import decide_launch
from config.catalog import WorkspaceTemplate, load_catalog
from lti_app.auth import current, requires
from lti_app.errors import Forbidden
from lti_app.pages.views import page
from lti_app.runtime import commit, db, settings
from lti_app.workspaces.glue import launch_body, link_of, prices, release_after_commit
from lti_app.workspaces.presenter import cost_figures, status
from provisioning.services import (
    WorkspaceActionError,
    live_workspace,
    request_start,
    request_stop,
    request_workspace,
    workspaces_of,
)

bp = Blueprint("workspaces", __name__)


def _course_default() -> str:
    policy = db().get(CoursePolicy, current().course.id)
    return policy.default_template if policy else load_catalog().default


def _template_for_link() -> tuple[str, str, WorkspaceTemplate]:
    """The link's template (deep-linked), else the course's default."""
    link_key, title, asked = link_of(launch_body())
    catalog = load_catalog()
    template = catalog.get(asked or "") or catalog.get(_course_default()) or catalog.get(catalog.default)
    assert template is not None
    return link_key, title, template


def _decide(template_id: str, *, starting: bool = False) -> Decision:
    ctx = current()
    return decide_launch(
        db(), ctx.course, ctx.person.id, template_id, catalog=load_catalog(), prices=prices(), starting=starting
    )


def _refused(decision: Decision, title: str) -> tuple[str, int]:
    """The educational refusal: why, what it would cost, the student's budget, what is approved, whom to ask."""
    return page("workspaces/blocked.html", decision=decision, link_title=title), 403


def _visible(ws_id: int) -> Workspace:
    """The workspace if the signed-in person may see it: their own, or any in the course for staff."""
    ctx = current()
    ws = db().get(Workspace, ws_id)
    if ws is None or ws.course_id != ctx.course.id:
        abort(404)
    if ws.person_id != ctx.person.id and not is_staff(ctx.level):
        abort(404)  # a student never learns whether another student's workspace exists
    return ws


def _actionable(ws_id: int) -> Workspace:
    ws = _visible(ws_id)
    if ws.person_id != current().person.id and not can_act(current().level):
        raise Forbidden("Teaching assistants have read-only access to student workspaces.")
    return ws


def _start(link_key: str, title: str, template: WorkspaceTemplate) -> Workspace:
    """Request the link's workspace (one per student and link), commit, then queue its provisioning."""
    ctx = current()
    ws, todo = request_workspace(
        db(),
        course_id=ctx.course.id,
        person_id=ctx.person.id,
        link_key=link_key,
        link_title=title,
        template=template,
        region=settings().aws_region,
    )
    release_after_commit(todo)
    commit()
    return ws


@bp.get("/app/workspace")
@requires(lambda level: level is StaffLevel.STUDENT)
def mine() -> str | Response | tuple[str, int]:
    """The link's workspace. The first click on the course's default template starts it when the policy allows;
    any other template asks for confirmation with the budget projection first."""
    ctx = current()
    link_key, title, template = _template_for_link()
    ws = live_workspace(db(), ctx.course.id, ctx.person.id, link_key)
    decision = None
    if ws is None:
        decision = _decide(template.id)
        if not decision.allowed:
            return _refused(decision, title)
        if template.id == _course_default():
            ws = _start(link_key, title, template)
    others = [w for w in workspaces_of(db(), ctx.course.id, ctx.person.id) if ws is None or w.id != ws.id]
    return page(
        "workspaces/student.html",
        ws=ws,
        link_title=title,
        template=template,
        decision=decision,
        cost=cost_figures(template, prices()),
        state=status(ws, template, ctx.course.label or ctx.course.title, local_ssh_port=_local_port()) if ws else None,
        others=others,
    )


@bp.post("/app/workspace")
@requires(lambda level: level is StaffLevel.STUDENT)
def confirm() -> Response | tuple[str, int]:
    """The student confirmed starting a workspace from a non-default template (checked again: fail closed)."""
    ctx = current()
    link_key, title, template = _template_for_link()
    if live_workspace(db(), ctx.course.id, ctx.person.id, link_key) is None:
        decision = _decide(template.id)
        if not decision.allowed:
            return _refused(decision, title)
    _start(link_key, title, template)
    return redirect(url_for("workspaces.mine", t=g.tool_token), code=303)


@bp.get("/api/workspaces/<int:ws_id>")
@requires()
def state(ws_id: int) -> Response:
    """Status for the page's poller."""
    ws = _visible(ws_id)
    label = current().course.label or current().course.title
    return jsonify(status(ws, load_catalog().get(ws.template_id), label, local_ssh_port=_local_port()))


def _local_port() -> int:
    """The local runtime's SSH port in the simulated account (0 on real AWS: connect to the instance)."""
    s = settings()
    return s.runtime_ssh_port if s.aws_endpoint_url and not s.is_production else 0


@bp.get("/app/workspaces/<int:ws_id>/<any(stop, start):action>")
@requires()
def confirm_action(ws_id: int, action: str) -> str:
    """Ask before stopping or starting (and say what it means for money and files)."""
    ws = _actionable(ws_id)
    template = load_catalog().get(ws.template_id)
    return page(
        "workspaces/confirm.html", ws=ws, action=action, cost=cost_figures(template, prices()) if template else None
    )


@bp.post("/app/workspaces/<int:ws_id>/<any(stop, start):action>")
@requires()
def act(ws_id: int, action: str) -> Response | tuple[str, int]:
    """Stop or start a workspace (own, or any as instructor / head TA); audited. Starts pass the policy again."""
    ctx = current()
    ws = _actionable(ws_id)
    db().refresh(ws, with_for_update=True)  # bursts of clicks: one transition, one event, one job per change
    actor = "student" if ws.person_id == ctx.person.id else "staff"
    if action == "start":
        decision = decide_launch(
            db(), ctx.course, ws.person_id, ws.template_id, catalog=load_catalog(), prices=prices(), starting=True
        )
        if not decision.allowed:
            return _refused(decision, ws.link_title or ws.link_key)
    try:
        if action == "stop":
            todo = request_stop(
                db(),
                ws,
                actor_person_id=ctx.person.id,
                actor=actor,
                reason=f"stopped by {ctx.person.display_name}",
                hibernate=True,
            )
        else:
            todo = request_start(db(), ws, actor_person_id=ctx.person.id, actor=actor)
    except WorkspaceActionError as exc:
        raise Forbidden(str(exc), status=409, title="Not possible right now") from exc
    release_after_commit(todo)
    commit()
    target = "workspaces.mine" if actor == "student" else "pages.home"
    return redirect(url_for(target, t=g.tool_token), code=303)
