"""Validate the course set-up wizard (pure): term, enrollment and budget, templates, limits, term-end actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from classroom.budget.disk_end import GRACE_DAYS, RETENTION_DAYS
from config.catalog import Catalog

ACCESS = ("approved", "on_request", "blocked")
INTEGRITY = ("ta_debug_access", "plagiarism_support")
BUDGET_SOURCE_MAX = 255  # the column's length (course_policies.budget_source)
TERM_END = ("stop_all", "revoke_access", "final_report", "delete_all_data")
SCOPES = ("student", "assignment")


@dataclass(frozen=True)
class SetupValues:
    """Everything the wizard decides, validated."""

    term_start: date
    term_end: date
    time_zone: str
    auto_close: bool
    expected_students: int
    budget_per_student: Decimal
    total_budget: Decimal
    budget_source: str
    templates: dict[str, str]
    default_template: str
    max_concurrent: int
    max_daily_cost: Decimal
    idle_stop_minutes: int
    shared_materials: bool
    integrity: dict[str, bool] = field(default_factory=dict)
    term_end_actions: dict[str, bool] = field(default_factory=dict)
    workspace_scope: str = "student"
    close_after_due: bool = False
    archive_retention_days: int = RETENTION_DAYS
    disk_grace_days: int = GRACE_DAYS


def _money(form: dict[str, str], name: str, errors: dict[str, str], low: Decimal, high: Decimal) -> Decimal:
    try:
        value = Decimal(form.get(name, "").replace("$", "").replace(",", "").strip())
        if not (low < value <= high) or value != value.quantize(Decimal("0.01")):
            raise InvalidOperation
        return value
    except InvalidOperation:
        errors[name] = f"Enter an amount in dollars above {low} and at most {high:,}, to the cent."
        return Decimal(0)


def _int(form: dict[str, str], name: str, errors: dict[str, str], low: int, high: int) -> int:
    try:
        value = int(form.get(name, "").strip())
        if not low <= value <= high:
            raise ValueError
        return value
    except ValueError:
        errors[name] = f"Enter a whole number from {low} to {high}."
        return low


def _workspaces(form: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """Workspace scope and the disks' end: archive retention and grace (blank fields keep the defaults)."""
    scope = form.get("workspace_scope") or "student"
    if scope not in SCOPES:
        errors["workspace_scope"] = "Choose one workspace per student, or one per assignment."
    defaults = (("archive_retention_days", str(RETENTION_DAYS)), ("disk_grace_days", str(GRACE_DAYS)))
    days = {k: form.get(k, "").strip() or d for k, d in defaults}
    return dict(
        workspace_scope=scope,
        close_after_due=scope == "assignment" and form.get("close_after_due") == "on",
        archive_retention_days=_int(days, "archive_retention_days", errors, 1, 3650),
        disk_grace_days=_int(days, "disk_grace_days", errors, 0, 365),
    )


def _text(form: dict[str, str], name: str, errors: dict[str, str], limit: int) -> str:
    """Whitespace-folded text, refused (never cut) when longer than its column."""
    value = " ".join(form.get(name, "").split())
    if len(value) > limit:
        errors[name] = f"At most {limit:,} characters, please (this has {len(value):,})."
    return value


def _dates(form: dict[str, str], errors: dict[str, str]) -> tuple[date, date]:
    try:
        start, end = date.fromisoformat(form.get("term_start", "")), date.fromisoformat(form.get("term_end", ""))
    except ValueError:
        errors["term_start"] = "Enter the term's first and last day as dates."
        return date.min, date.min
    if not (date(2000, 1, 1) <= start and end <= date(2199, 12, 31)):
        errors["term_start"] = "Enter term dates between the years 2000 and 2199."
    elif end < start:
        errors["term_end"] = "The term must end after it starts."
    return start, end


def _templates(form: dict[str, str], catalog: Catalog, errors: dict[str, str]) -> tuple[dict[str, str], str]:
    chosen = {t.id: form.get(f"template_{t.id}", "blocked") for t in catalog.templates}
    if any(v not in ACCESS for v in chosen.values()):
        errors["templates"] = "Each template is approved, approved on request, or blocked."
    default = form.get("default_template", "")
    if chosen.get(default) != "approved":
        errors["default_template"] = "The default template must be one of the approved templates."
    return chosen, default


def parse_setup(form: dict[str, str], catalog: Catalog, course_label: str) -> tuple[SetupValues | None, dict[str, str]]:
    """Return (values, {}) or (None, {field: message}); nothing is saved when there is any error."""
    errors: dict[str, str] = {}
    start, end = _dates(form, errors)
    tz = form.get("time_zone", "").strip()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = "Choose the course's time zone, e.g. America/Los_Angeles."
    students = _int(form, "expected_students", errors, 1, 5000)
    per_student = _money(form, "budget_per_student", errors, Decimal(0), Decimal(1000))
    total = _money(form, "total_budget", errors, Decimal(0), Decimal(1_000_000))
    if not errors.get("total_budget") and not errors.get("budget_per_student") and total < per_student:
        errors["total_budget"] = "The total budget cannot be smaller than one student's budget."
    templates, default = _templates(form, catalog, errors)
    daily = _money(form, "max_daily_cost", errors, Decimal(0), Decimal(1000))
    term_end = {k: form.get(f"end_{k}") == "on" for k in TERM_END}
    if term_end["delete_all_data"] and form.get("delete_confirm", "").strip() != course_label:
        errors["delete_confirm"] = f'To delete all data at term end, type the course name "{course_label}" exactly.'
    values: dict[str, Any] = dict(
        term_start=start,
        term_end=end,
        time_zone=tz,
        auto_close=form.get("auto_close") == "on",
        expected_students=students,
        budget_per_student=per_student,
        total_budget=total,
        budget_source=_text(form, "budget_source", errors, BUDGET_SOURCE_MAX),
        templates=templates,
        default_template=default,
        max_concurrent=_int(form, "max_concurrent", errors, 1, 5),
        max_daily_cost=daily,
        idle_stop_minutes=_int(form, "idle_stop_minutes", errors, 15, 1440),
        shared_materials=form.get("shared_materials") == "on",
        integrity={"audit_log": True, "ssh_key_isolation": True, **{k: form.get(k) == "on" for k in INTEGRITY}},
        term_end_actions=term_end,
        **_workspaces(form, errors),
    )
    if errors:
        return None, errors
    return SetupValues(**values), {}
