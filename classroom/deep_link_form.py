"""Validate the instructor's deep-linking choices (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from config.catalog import Catalog

YEARS = (2000, 2199)  # a due date outside these years is a typo, and near the calendar's ends it cannot convert


@dataclass(frozen=True)
class AssignmentChoice:
    """A validated assignment link: template, title, optional due date (UTC) and points, and the zone it meant."""

    template_id: str
    title: str
    due_at: datetime | None
    points: Decimal | None
    time_zone: str = "UTC"


def parse_assignment_form(
    form: dict[str, str], catalog: Catalog, time_zone: str, *, ask_zone_from: Sequence[str] | None = None
) -> tuple[AssignmentChoice | None, dict[str, str]]:
    """Return (choice, {}) or (None, {field: error message}).

    `ask_zone_from`: the course has no time zone yet (deep linking before the set-up wizard), so the form carries
    one of these zones and the due date is read in it, as the instructor meant it.
    """
    errors: dict[str, str] = {}
    if ask_zone_from is not None:
        time_zone = form.get("time_zone", "").strip()
        if time_zone not in ask_zone_from:
            errors["time_zone"] = "Choose the course's time zone: the due date is read in it."
            time_zone = "UTC"
    template_id = form.get("template", "").strip()
    if catalog.get(template_id) is None:
        errors["template"] = "Choose one of the workspace templates."
    title = " ".join(form.get("title", "").split())
    if not title:
        errors["title"] = "Give the assignment a title."
    elif len(title) > 200:
        errors["title"] = "Keep the title under 200 characters."
    due_at = None
    if form.get("due_at", "").strip():
        try:
            local = datetime.fromisoformat(form["due_at"].strip())
            due_at = (local if local.tzinfo else local.replace(tzinfo=ZoneInfo(time_zone))).astimezone(ZoneInfo("UTC"))
            if not YEARS[0] <= due_at.year <= YEARS[1]:
                raise ValueError("out of range")
        except (ValueError, OverflowError):  # OverflowError: 9999 at -12:00 or 0001 at +14:00 leaves the calendar
            errors["due_at"] = f"Enter the due date as YYYY-MM-DDTHH:MM, between {YEARS[0]} and {YEARS[1]}."
            due_at = None
    points = None
    if form.get("points", "").strip():
        try:
            points = Decimal(form["points"].strip())
            if not (Decimal(0) < points <= Decimal(1000)):
                raise InvalidOperation
        except InvalidOperation:
            errors["points"] = "Points must be a number above 0 and at most 1000."
            points = None
    if errors:
        return None, errors
    return AssignmentChoice(template_id, title, due_at, points, time_zone), {}
