"""The student's workspace: first click, progress, how to connect, start and stop with confirmation."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, jsonify, redirect, url_for

from classroom.budget.enforcement import idle_limit, idle_text
from classroom.budget.policy import Decision
from classroom.claims import LTI
from classroom.db import utcnow
from classroom.models import CoursePolicy, Workspace
from classroom.roles import StaffLevel, can_act, is_staff
from classroom.services.budgets import decide_launch, lock_for_start
from classroom.services.opening import (
    Link,
    find_workspace,
    folder_for,
    folders_of,
    open_workspace,
    scope_of,
    workspace_key,
)
from classroom.services.staff_actions import ReasonError, parse_reason, tell_student
from classroom.services.workspaces import Job, WorkspaceActionError, request_start, request_stop, workspaces_of
from classroom.workspaces.lifecycle import LIVE
from config.catalog import WorkspaceTemplate, load_catalog
from lms_sync.deadlines import Deadline, due_from_custom, upcoming_for
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import StartForm, WorkspaceActionForm
from lti_app.errors import Forbidden, ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db, settings
from lti_app.workspaces.glue import launch_body, link_of, prices, release_after_commit
from lti_app.workspaces.presenter import cost_figures, status
from provisioning.retire import request_retire
from provisioning.ssh_keys import active_keys

bp = Blueprint("workspaces", __name__)


def _course_default() -> str:
    policy = db().get(CoursePolicy, current().course.id)
    return policy.default_template if policy else load_catalog().default


def _default_template() -> WorkspaceTemplate:
    catalog = load_catalog()
    template = catalog.get(_course_default()) or catalog.get(catalog.default)
    assert template is not None
    return template


def _link_and_template() -> tuple[Link, WorkspaceTemplate]:
    """The launch's link (an assignment when it names a template or a due date) and its template."""
    body = launch_body()
    link_key, title, asked = link_of(body)
    custom = body.get(LTI + "custom") or {}
    due = due_from_custom(custom, resource_link_id=link_key, title=title) if isinstance(custom, dict) else None
    catalog = load_catalog()
    template = catalog.get(asked or "") or catalog.get(_course_default()) or catalog.get(catalog.default)
    assert template is not None
    link = Link(link_key, title, asked, due.due_at if due else None, assignment=bool(asked or due))
    return link, template


def _decide(template_id: str, *, starting: bool = False) -> Decision:
    ctx = current()
    return decide_launch(
        db(), ctx.course, ctx.person.id, template_id, catalog=load_catalog(), prices=prices(), starting=starting
    )


def _refused(decision: Decision, title: str) -> tuple[str, int]:
    """The educational refusal: why, what it would cost, the student's budget, what is approved, whom to ask.

    A template the student may ask for is no refusal: a neutral "available on request" page (200)."""
    askable = decision.code in ("needs_request", "request_pending")
    return page("workspaces/blocked.html", decision=decision, link_title=title), 200 if askable else 403


def _offers(skip: str) -> list[Decision]:
    """The other templates the student may use or ask for, each with its cost, budget check and projection."""
    policy = db().get(CoursePolicy, current().course.id)
    if policy is None:
        return []
    wanted = sorted(tid for tid, access in policy.templates.items() if access != "blocked" and tid != skip)
    ctx, scope = current(), policy.workspace_scope
    keys = {w.link_key for w in workspaces_of(db(), ctx.course.id, ctx.person.id) if w.state in LIVE}
    # a template whose workspace the link would find (one per template) starts that one: no new disk set aside
    decided = (_decide(tid, starting=scope == "student" and workspace_key(scope, "", tid) in keys) for tid in wanted)
    return [d for d in decided if d.template is not None]


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


def _home(link: Link, template: WorkspaceTemplate) -> str:
    """The student's home in the course: their workspaces with state and actions, and what Start would start."""
    ctx = current()
    mine = workspaces_of(db(), ctx.course.id, ctx.person.id)
    key = workspace_key(scope_of(db(), ctx.course.id), link.key, template.id)
    has_default = any(w.link_key == key and w.state in LIVE for w in mine)
    decision = None if has_default else _decide(template.id)
    return page(
        "workspaces/home.html",
        workspaces=[
            (
                w,
                status(
                    w,
                    load_catalog().get(w.template_id),
                    ctx.course.label or ctx.course.title,
                    local_ssh_port=_local_port(),
                ),
            )
            for w in mine
            if w.state in LIVE
        ],  # fmt: skip
        removed=[w for w in mine if w.state not in LIVE][:5],
        offers=_offers(template.id),
        template=template,
        decision=decision,
        cost=cost_figures(template, prices()),
        deadlines=upcoming_for(db(), ctx.course.id, ctx.person.id, utcnow()),
        time_zone=ctx.course.time_zone,
        has_key=bool(active_keys(db(), ctx.person.id)),
    )


@bp.get("/app/workspaces")
@requires(lambda level: level is StaffLevel.STUDENT)
def home() -> str:
    """The course link and "My workspace": the student's workspaces; never starts anything."""
    return _home(Link("course", "Cloud Workstation"), _default_template())


@bp.get("/app/workspace")
@requires(lambda level: level is StaffLevel.STUDENT)
def mine() -> str | Response | tuple[str, int]:
    """The link's page. Nothing starts on a GET: a first visit shows what Start would start and what it costs."""
    ctx = current()
    link, template = _link_and_template()
    if not link.assignment:
        return _home(link, template)
    scope = scope_of(db(), ctx.course.id)
    ws = find_workspace(db(), ctx.course.id, ctx.person.id, workspace_key(scope, link.key, template.id))
    decision = None
    if ws is None:
        decision = _decide(template.id)
        if not decision.allowed:
            return _refused(decision, link.title)
    others = [w for w in workspaces_of(db(), ctx.course.id, ctx.person.id) if w.state in LIVE and w != ws]
    return page(
        "workspaces/student.html",
        ws=ws,
        link=link,
        link_title=link.title,
        folder=folder_for(link.title),
        template=template,
        decision=decision,
        cost=cost_figures(template, prices()),
        idle=_idle(ctx.course.id, template),
        state=status(ws, template, ctx.course.label or ctx.course.title, local_ssh_port=_local_port()) if ws else None,
        others=others,
        scope=scope,
        prepared=ws is not None and folder_for(link.title) in {f.folder for f in folders_of(db(), ws.id)},
        due_text=Deadline(link.title, link.due_at, ()).when(ctx.course.time_zone) if link.due_at else "",
        has_key=bool(active_keys(db(), ctx.person.id)),
    )


def _idle(course_id: int, template: WorkspaceTemplate) -> str:
    """The idle limit the sweep applies to this template's workspace in the course, in words."""
    policy = db().get(CoursePolicy, course_id)
    own = template.idle_stop_minutes
    return idle_text(idle_limit(policy.idle_stop_minutes, own) if policy else own)


@bp.post("/app/workspace")
@requires(lambda level: level is StaffLevel.STUDENT)
def confirm() -> Response | tuple[str, int]:
    """Start: the link's workspace (reused, started, or requested), the policy checked again (fail closed)."""
    ctx = current()
    form = parse_form(StartForm, status=400)
    link, template = _link_and_template()
    if form.scope == "course":  # Start on the home page: the course's default template
        link, template = Link("course", "Cloud Workstation"), _default_template()
    try:
        opened = open_workspace(
            db(), ctx.course, ctx.person.id, link, template,
            catalog=load_catalog(), prices=prices(), region=settings().aws_region,
        )  # fmt: skip
    except WorkspaceActionError as exc:
        raise Forbidden(str(exc), status=409, title="Not possible right now") from exc
    if opened.ws is None:
        assert opened.decision is not None
        return _refused(opened.decision, link.title)
    release_after_commit(opened.jobs)
    commit()
    target = "workspaces.mine" if link.assignment else "workspaces.home"
    return redirect(url_for(target, t=g.tool_token), code=303)


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


@bp.get("/app/workspaces/<int:ws_id>/<any(stop, start, remove):action>")
@requires()
def confirm_action(ws_id: int, action: str) -> str:
    """Ask before stopping, starting or removing (and say what it means for money and files)."""
    ws = _actionable(ws_id)
    template = load_catalog().get(ws.template_id)
    policy = db().get(CoursePolicy, ws.course_id)
    return page(
        "workspaces/confirm.html",
        ws=ws,
        action=action,
        cost=cost_figures(template, prices()) if template else None,
        retention_days=policy.archive_retention_days if policy else 365,
    )


def _do(ws: Workspace, action: str, actor: str, form: WorkspaceActionForm) -> list[Job]:
    """Apply one confirmed action to a locked workspace (the services audit it; staff give a reason, told to the
    student)."""
    ctx = current()
    if action == "remove":
        if not form.confirm:
            raise ToolError("Tick the box to confirm that this workspace's disk is to be deleted.", status=400)
        return request_retire(db(), ws, actor_person_id=ctx.person.id, actor=actor,
                              reason=f"removed by {ctx.person.display_name}", after=utcnow())  # fmt: skip
    if ws.retire_after is not None:
        raise WorkspaceActionError("This workspace is being archived and removed.")
    why = ""
    if actor == "staff":
        try:
            why = parse_reason(form.reason)
        except ReasonError as exc:
            raise ToolError(str(exc), status=400) from exc
        tell_student(db(), ctx.course, ws, ctx.person, action, why)
    if action == "stop":
        reason = f"stopped by {ctx.person.display_name}" + (f": {why}" if why else "")
        return request_stop(db(), ws, actor_person_id=ctx.person.id, actor=actor, reason=reason, hibernate=True)
    return request_start(db(), ws, actor_person_id=ctx.person.id, actor=actor)


@bp.post("/app/workspaces/<int:ws_id>/<any(stop, start, remove):action>")
@requires()
def act(ws_id: int, action: str) -> Response | tuple[str, int]:
    """Stop, start or remove a workspace (own, or any as instructor / head TA); audited. Starts pass the policy
    again; a removal archives the home to S3 first."""
    ctx = current()
    form = parse_form(WorkspaceActionForm, status=400)
    ws = _actionable(ws_id)
    if action == "start":  # the course's and the student's locks before the workspace row (one lock order)
        lock_for_start(db(), ws.course_id, ws.person_id)
    db().refresh(ws, with_for_update=True)  # bursts of clicks: one transition, one event, one job per change
    actor = "student" if ws.person_id == ctx.person.id else "staff"
    if action == "start":
        decision = decide_launch(
            db(), ctx.course, ws.person_id, ws.template_id, catalog=load_catalog(), prices=prices(), starting=True
        )
        if not decision.allowed:
            return _refused(decision, ws.link_title or ws.link_key)
    try:
        todo = _do(ws, action, actor, form)
    except WorkspaceActionError as exc:
        raise Forbidden(str(exc), status=409, title="Not possible right now") from exc
    release_after_commit(todo)
    commit()
    target = "workspaces.home" if actor == "student" else "pages.home"
    return redirect(url_for(target, t=g.tool_token), code=303)
