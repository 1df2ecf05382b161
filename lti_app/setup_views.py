"""The course set-up wizard (owner and instructors), and template requests (students ask, instructors decide)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, Response, g, redirect, request, url_for
from sqlalchemy import select

from classroom.budget.date_warnings import course_today, last_day_warning
from classroom.budget.disk_end import GRACE_DAYS, RETENTION_DAYS
from classroom.budget.setup_form import INTEGRITY, TERM_END, parse_setup
from classroom.db import utcnow
from classroom.integrity import settings as integrity_settings
from classroom.models import CoursePolicy, Enrollment, Person, RequestStatus, TemplateRequest
from classroom.roles import StaffLevel, can_configure
from classroom.services.budgets import BudgetError, save_policy
from classroom.services.launches import LaunchRefused, promote_head_ta
from classroom.services.request_context import request_context, template_name
from classroom.services.template_requests import ask_for_template, decide_request
from config.catalog import load_catalog
from lms_sync.progress import IN_PROGRESS, read_state
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import DecisionForm, TemplateRequestForm
from lti_app.errors import Forbidden
from lti_app.inputs import form_id
from lti_app.pages.views import page
from lti_app.runtime import commit, db, runtime
from lti_app.workspaces.glue import prices
from lti_app.workspaces.presenter import cost_figures

bp = Blueprint("setup", __name__)
CENT = Decimal("0.01")
TIME_ZONES = (
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
)


def _defaults() -> dict[str, str]:
    """The seed's CS 229 set-up, as a starting point the instructor edits."""
    ctx = current()
    policy = db().get(CoursePolicy, ctx.course.id)
    if policy is None:
        catalog = load_catalog()
        # "Today" anywhere on Earth (UTC-12): a term starting today is open whatever the course's time zone.
        today = datetime.now(timezone(timedelta(hours=-12))).date()
        values = {
            "term_start": str(ctx.course.term_start or today),
            "term_end": str(ctx.course.term_end or today + timedelta(weeks=15)),
            "time_zone": ctx.course.time_zone,
            "auto_close": "on",
            "expected_students": "50",
            "budget_per_student": "24.00",
            "total_budget": "1200.00",
            "budget_source": "University IT",
            "default_template": catalog.default,
            "max_concurrent": "1",
            "max_daily_cost": "5.00",
            "idle_stop_minutes": "240",
            "shared_materials": "on",
            "ta_debug_access": "on",
            "workspace_scope": "student",
            "archive_retention_days": str(RETENTION_DAYS),
            "disk_grace_days": str(GRACE_DAYS),
        }
        values.update(
            {
                f"template_{t.id}": "approved"
                if t.id == catalog.default
                else ("blocked" if "gpu" in t.id else "on_request")
                for t in catalog.templates
            }
        )
        values.update({f"end_{k}": "on" for k in TERM_END if k != "delete_all_data"})
        return values
    values = {
        "term_start": str(ctx.course.term_start),
        "term_end": str(ctx.course.term_end),
        "time_zone": ctx.course.time_zone,
        "expected_students": str(policy.expected_students),
        "budget_per_student": str(policy.budget_per_student.quantize(CENT)),
        "total_budget": str(policy.total_budget.quantize(CENT)),
        "budget_source": policy.budget_source,
        "default_template": policy.default_template,
        "max_concurrent": str(policy.max_concurrent),
        "max_daily_cost": str(policy.max_daily_cost.quantize(CENT)),
        "idle_stop_minutes": str(policy.idle_stop_minutes),
        "workspace_scope": policy.workspace_scope,
        "archive_retention_days": str(policy.archive_retention_days),
        "disk_grace_days": str(policy.disk_grace_days),
    }
    values.update({f"template_{k}": v for k, v in policy.templates.items()})
    values.update({k: "on" for k in INTEGRITY if policy.integrity.get(k)})
    if integrity_settings.load(db(), ctx.course.id).record_commands:
        values["record_commands"] = "on"
    values.update({f"end_{k}": "on" for k, v in policy.term_end_actions.items() if v})
    values.update({k: "on" for k in ("auto_close", "shared_materials", "close_after_due") if getattr(policy, k)})
    return values


def _wizard(values: dict[str, str], errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    ctx = current()
    syncing = read_state(runtime().redis, ctx.course.id).get("state") in IN_PROGRESS
    catalog = load_catalog()
    tas = (
        db()
        .execute(
            select(Enrollment, Person)
            .join(Person, Person.id == Enrollment.person_id)
            .where(Enrollment.course_id == ctx.course.id, Enrollment.level.in_((StaffLevel.TA, StaffLevel.HEAD_TA)))
        )
        .all()
    )
    options = [(t, cost_figures(t, prices())) for t in catalog.templates]
    return page(
        "setup/wizard.html",
        values=values,
        errors=errors or {},
        options=options,
        tas=tas,
        time_zones=TIME_ZONES,
        configured=db().get(CoursePolicy, ctx.course.id) is not None,
        syncing=syncing,
        past_end=bool(errors and "is already past" in errors.get("term_end", "")),
    ), status


@bp.get("/app/setup")
@requires(can_configure)
def wizard() -> tuple[str, int]:
    """Show the wizard, filled with the current policy or the scenario's defaults."""
    return _wizard(_defaults())


@bp.post("/app/setup")
@requires(can_configure)
def save() -> Response | tuple[str, int]:
    """Validate everything; save nothing unless all of it is valid."""
    ctx = current()
    form = {k: v for k, v in request.form.items() if k not in ("t", "csrf_token")}
    values, errors = parse_setup(form, load_catalog(), ctx.course.label or ctx.course.title)
    if values is None:
        return _wizard(form, errors, 400)
    warning = last_day_warning(values.term_end, course_today(utcnow(), values.time_zone))
    if warning and form.get("confirm_past") != "on":  # nothing saved until the instructor confirms
        return _wizard(form, {"term_end": warning + " Tick “Yes, close the course now” to save anyway."}, 400)
    save_policy(db(), ctx.course, values, ctx.person.id)
    integrity_settings.set_record_commands(db(), ctx.course.id, form.get("record_commands") == "on", ctx.person.id)
    head_ta = form_id("head_ta")
    if head_ta is not None and ctx.level is StaffLevel.OWNER:
        try:
            promote_head_ta(db(), ctx.course.id, ctx.person.id, head_ta)
        except LaunchRefused as exc:
            db().rollback()
            return _wizard(form, {"head_ta": str(exc)}, 400)
    commit()
    return redirect(url_for("pages.home", t=g.tool_token, settings_saved=1), code=303)


@bp.post("/app/requests/<template_id>")
@requires(lambda level: level is StaffLevel.STUDENT)
def ask(template_id: str) -> Response:
    """A student asks for an approved-on-request template, with a reason."""
    ctx = current()
    form = parse_form(TemplateRequestForm, status=400)
    try:
        ask_for_template(
            db(), ctx.course, ctx.person.id, template_id, form.reason, catalog=load_catalog(), prices=prices()
        )
    except BudgetError as exc:
        raise Forbidden(str(exc), status=400, title="Request not sent") from exc
    commit()
    return redirect(url_for("workspaces.mine", t=g.tool_token), code=303)


@bp.get("/app/requests")
@requires(can_configure)
def requests_list() -> str:
    """Pending and decided template requests."""
    rows = (
        db()
        .execute(
            select(TemplateRequest, Person)
            .join(Person, Person.id == TemplateRequest.person_id)
            .where(TemplateRequest.course_id == current().course.id)
            .order_by(TemplateRequest.status, TemplateRequest.created_at.desc())
        )
        .all()
    )
    catalog, course = load_catalog(), current().course
    contexts = {
        r.id: request_context(db(), course, p.id, r.template_id, catalog=catalog, prices=prices())
        for r, p in rows
        if r.status is RequestStatus.PENDING
    }
    names = {r.template_id: template_name(catalog, r.template_id) for r, _ in rows}
    decided = {"approve": "Approved", "deny": "Denied"}.get(request.args.get("decided", ""))  # after a decision
    return page(
        "setup/requests.html",
        rows=rows,
        pending=RequestStatus.PENDING,
        contexts=contexts,
        names=names,
        decided=decided,
    )


@bp.post("/app/requests/<int:request_id>/<any(approve, deny):decision>")
@requires(can_configure)
def decide(request_id: int, decision: str) -> Response:
    """Approve or deny a request; the student is told."""
    ctx = current()
    form = parse_form(DecisionForm, status=400)
    try:
        decide_request(db(), ctx.course, request_id, ctx.person.id, decision == "approve", form.note)
    except BudgetError as exc:
        raise Forbidden(str(exc), status=409, title="Not possible") from exc
    commit()
    return redirect(url_for("setup.requests_list", t=g.tool_token, decided=decision), code=303)
