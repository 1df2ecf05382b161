"""Budget pages: the student's own budget, and the instructor's cost report with CSV export and grants."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import Blueprint, Response, g, redirect, url_for
from werkzeug.datastructures import MultiDict

from classroom.budget.charts import Bar, daily_spend_chart
from classroom.budget.enforcement import ANOMALY_FACTOR, idle_text
from classroom.budget.figures import CourseReport, term_progress
from classroom.budget.final_text import dollars
from classroom.budget.runway import pace_sentence
from classroom.db import utcnow
from classroom.models import BudgetGrant
from classroom.notify import notify
from classroom.roles import can_configure, is_staff
from classroom.services.budgets import BudgetError
from classroom.services.grants import AMOUNT_RULE, MAX_GRANT, grant_budget
from classroom.services.reports import course_report, course_today, student_budget, template_rate
from classroom.text import spreadsheet_safe
from config.catalog import load_catalog
from lti_app.auth import current, requires
from lti_app.boundary import parse_form, parse_query
from lti_app.boundary.forms import GrantForm, ReportQuery
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import prices

bp = Blueprint("budget", __name__)
CENT = Decimal("0.01")
COURSE_WIDE = "course"  # the grant form's value for "the course budget, not one student"
CSV_HEADER = (
    "name",
    "email",
    "enrolled",
    "spent",
    "cap",
    "percent_of_cap",
    "running_hours",
    "effective_per_hour",
    "over_cap",
    "near_cap",
    "anomaly",
    "idle_stops",
    "kept_for_disks",
    "left",
)


def hours(value: Decimal) -> str:
    """Hours to one decimal, with thousands separators."""
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


@bp.get("/app/budget")
@requires()
def mine() -> str | Response:
    """The student's own budget (also the course-navigation page: staff are sent on to the cost report)."""
    ctx = current()
    if is_staff(ctx.level):
        return redirect(url_for("budget.report", t=g.tool_token), code=303)
    figures = student_budget(db(), ctx.course, ctx.person.id, utcnow(), prices=prices(), catalog=load_catalog())
    chart = None
    if figures is not None:
        chart = daily_spend_chart(
            [Bar(d.day, d.amount) for d in figures.days], title="Your spend per day, last 30 days", id_prefix="mine"
        )
    figures_page = {
        "b": figures,
        "chart": chart,
        "dollars": dollars,
        "hours": hours,
        "pace_sentence": pace_sentence,
        "idle_text": idle_text,
    }
    return page("budget/student.html", **figures_page)


@dataclass(frozen=True)
class GrantInput:
    """A checked grant: to one student (person_id) or to the course (None)."""

    person_id: int | None
    amount: Decimal
    reason: str


def parse_grant(form: MultiDict[str, str], students: set[int]) -> tuple[GrantInput | None, dict[str, str]]:
    """Check the grant form; (input, {}) or (None, errors by field). Pure."""
    errors: dict[str, str] = {}
    who = form.get("person", "").strip()
    person_id: int | None = None
    if who != COURSE_WIDE:
        person_id = int(who) if who.isdigit() else None
        if person_id not in students:
            errors["person"] = "Choose a student of this course, or the course budget."
    amount, problem = parse_amount(form.get("amount", ""))
    if problem:
        errors["amount"] = problem
    reason = " ".join(form.get("reason", "").split())
    if len(reason) < 5:
        errors["reason"] = "Give a reason of at least 5 characters; it is kept in the audit trail."
    elif len(reason) > 500:
        errors["reason"] = "Keep the reason under 500 characters."
    return (None, errors) if errors else (GrantInput(person_id, amount, reason), {})


def parse_amount(text: str) -> tuple[Decimal, str]:
    """A grant's amount in dollars, and "" or what is wrong with it. Pure."""
    raw = text.strip().lstrip("$").replace(",", "")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return Decimal(0), "Enter an amount in dollars, for example 10.00."
    if not amount.is_finite() or not Decimal(0) < amount <= MAX_GRANT:
        return Decimal(0), AMOUNT_RULE
    if amount != amount.quantize(CENT):
        return Decimal(0), "Use whole cents (at most two decimals)."
    return amount, ""


@dataclass(frozen=True)
class GrantPreview:
    """What a grant of `amount` would leave unallocated (negative: it does not fit and would be refused)."""

    amount: Decimal
    leaves: Decimal
    problem: str = ""  # what is wrong with the entered amount (a grant of it would be refused for that)

    @property
    def fits(self) -> bool:
        """The same rule as grant_budget: a grant above the unallocated remainder is refused."""
        return self.leaves >= 0


def grant_preview(unallocated: Decimal, text: str) -> GrantPreview | None:
    """The preview for an entered amount (None when none was entered; with `problem` when it is not a valid
    amount, the grant form's own message). Pure."""
    if not text.strip():
        return None
    amount, problem = parse_amount(text)
    return GrantPreview(amount, unallocated - amount, problem)


def _report_page(
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    granted: BudgetGrant | None = None,
    amount: str = "",
) -> str:
    ctx = current()
    report = course_report(db(), ctx.course, prices=prices())
    amount = amount or (form or {}).get("amount", "")
    progress = term_progress(ctx.course.term_start, ctx.course.term_end, course_today(ctx.course, utcnow()))
    names = {r.person_id: r.name for r in report.rows} if report else {}
    return page(
        "budget/report.html",
        r=report,
        progress=progress,
        errors=errors or {},
        form=form or {},
        granted=granted,
        granted_to=names.get(granted.person_id) if granted and granted.person_id else None,
        may_grant=can_configure(ctx.level),
        dollars=dollars,
        hours=hours,
        course_wide=COURSE_WIDE,
        factor=ANOMALY_FACTOR,
        rate=template_rate(load_catalog(), prices(), report.default_template) if report else None,
        preview=grant_preview(report.unallocated, amount) if report else None,
        preview_amount=amount,
    )


@bp.get("/app/report")
@requires(is_staff)
def report() -> str:
    """The course cost report; TAs see it read-only. `amount`: show what a grant of it would leave (reads only)."""
    granted = None
    query = parse_query(ReportQuery)
    granted_id = query.granted
    if granted_id is not None:
        granted = db().get(BudgetGrant, granted_id)
        if granted is None or granted.course_id != current().course.id:
            granted = None
    return _report_page(granted=granted, amount=query.amount)


@bp.post("/app/report/grants")
@requires(can_configure)
def grant() -> Response | tuple[str, int]:
    """Grant extra budget to a student or the course (owner and instructors); audited, the student notified."""
    ctx = current()
    form = parse_form(GrantForm, status=400).model_dump()
    report = course_report(db(), ctx.course)
    students = {r.person_id for r in report.rows} if report else set()
    values, errors = parse_grant(MultiDict(form), students)
    if values is None or report is None:
        if report is None:
            errors["person"] = "Set the course up first: there is no budget to add to yet."
        return _report_page(errors, form), 400
    try:
        row = grant_budget(db(), ctx.course, values.person_id, values.amount, values.reason, ctx.person.id)
    except BudgetError as exc:  # the service checks again; nothing was written
        return _report_page({"amount": str(exc)}, form), 400
    if values.person_id is not None:
        notify(
            db(),
            person_id=values.person_id,
            course_id=ctx.course.id,
            subject=f"[{ctx.course.display_name}] Your budget was increased by {dollars(values.amount)}",
            body=f"Your instructor added {dollars(values.amount)} to your Cloud Workstation budget for "
            f"{ctx.course.display_name}. See your budget page for what is left.",
        )
    commit()
    return redirect(url_for("budget.report", t=g.tool_token, granted=row.id, _anchor="grant"), code=303)


def _plain(value: Decimal | None) -> str:
    return "" if value is None else str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def csv_text(report: CourseReport) -> str:
    """The per-student table as CSV: a header, money as plain decimals with two places."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in report.rows:
        writer.writerow(
            [
                spreadsheet_safe(r.name),
                spreadsheet_safe(r.email),
                "yes" if r.active else "no",
                _plain(r.spent),
                _plain(r.cap),
                r.percent,
                _plain(r.running_hours),
                _plain(r.effective_hourly),
                "yes" if r.over_cap else "no",
                "yes" if r.near_cap else "no",
                "yes" if r.anomaly else "no",
                r.idle_stops,
                _plain(r.reserved),
                _plain(r.left),
            ]
        )
    return out.getvalue()


@bp.get("/app/report.csv")
@requires(is_staff)
def report_csv() -> Response:
    """Download the per-student table."""
    ctx = current()
    report = course_report(db(), ctx.course, prices=prices())
    if report is None:
        return Response("The course is not set up yet: there is no report.\n", status=404, mimetype="text/plain")
    slug = re.sub(r"[^a-z0-9]+", "-", (ctx.course.label or ctx.course.title or "course").lower()).strip("-")
    name = f"{slug or 'course'}-cost-report-{course_today(ctx.course, utcnow()).isoformat()}.csv"
    return Response(
        csv_text(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


__all__ = ["bp", "csv_text", "dollars", "parse_grant"]
