"""Due dates from three sources (Canvas REST, AGS line items, launch custom parameters), each kept with its source.

`upcoming_for` is what the student page shows: the next deadlines, one line per assignment and date, naming
every source that reported it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import Course, DueDate, DueSource

SOURCE_LABELS = {
    DueSource.CANVAS_REST: "Canvas assignment",
    DueSource.AGS_LINE_ITEM: "LMS gradebook column",
    DueSource.LAUNCH_CUSTOM: "assignment link",
}
# Launch custom parameters that carry a due date, best first: the LMS's current value beats the tool's own.
CUSTOM_DUE_KEYS = ("due_at", "resource_end_at", "tool_due_at")


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 date-time (Z or offset; a bare one is UTC), or None for empty, unexpanded or bad values."""
    if not isinstance(value, str) or not value.strip() or value.strip().startswith("$"):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 9999 at -12:00 or year 1 at +14:00
        return None
    # Near the calendar's ends a date cannot be shown in every time zone: such a date is a typo, not a deadline.
    return parsed if 2000 <= parsed.year <= 2199 else None


@dataclass(frozen=True)
class DueFact:
    """One source's statement about one assignment."""

    source: DueSource
    key: str
    title: str
    due_at: datetime
    url: str = ""


def due_from_custom(custom: Mapping[str, str], *, resource_link_id: str, title: str) -> DueFact | None:
    """The link's due date from launch custom parameters ($Canvas.assignment.dueAt.iso8601 and friends)."""
    if not resource_link_id:
        return None
    for key in CUSTOM_DUE_KEYS:
        when = parse_when(custom.get(key))
        if when is not None:
            name = (custom.get("assignment_title") or title or "Assignment").strip()[:512]
            return DueFact(DueSource.LAUNCH_CUSTOM, resource_link_id[:512], name, when)
    return None


@dataclass(frozen=True)
class Deadline:
    """One upcoming deadline as a student sees it."""

    title: str
    due_at: datetime
    sources: tuple[str, ...]
    url: str = ""

    def local(self, time_zone: str) -> datetime:
        """The due time in the course's time zone."""
        return self.due_at.astimezone(ZoneInfo(time_zone))

    def when(self, time_zone: str) -> str:
        """'Mon 2 Sep 2024, 11:59 PM PDT' in the course's time zone."""
        moment = self.local(time_zone)
        return f"{moment:%a} {moment.day} {moment:%b %Y}, {moment:%I:%M %p %Z}".replace(" 0", " ", 1)

    def due_in(self, now: datetime) -> str:
        """'in 3 hours', 'in 6 days'."""
        seconds = (self.due_at - now).total_seconds()
        if seconds < 3600:
            return "in less than an hour"
        if seconds < 48 * 3600:
            hours = int(seconds // 3600)
            return f"in {hours} hour{'s' if hours != 1 else ''}"
        return f"in {int(seconds // 86400)} days"


def merge_deadlines(facts: Iterable[DueFact], now: datetime, limit: int = 5) -> list[Deadline]:
    """Future deadlines, soonest first; facts with the same title and time are one line listing their sources."""
    merged: dict[tuple[str, datetime], list[DueFact]] = {}
    for fact in facts:
        if fact.due_at >= now:
            merged.setdefault((fact.title.strip().lower(), fact.due_at), []).append(fact)
    lines = []
    for (_, due_at), group in merged.items():
        group.sort(key=lambda f: list(DueSource).index(f.source))
        sources = tuple(dict.fromkeys(SOURCE_LABELS[f.source] for f in group))
        url = next((f.url for f in group if f.url), "")
        lines.append(Deadline(group[0].title, due_at, sources, url))
    return sorted(lines, key=lambda d: (d.due_at, d.title))[:limit]


# One due-date upsert, written only when something changed; {source} is where the row comes from (text:
# SQLAlchemy does not cache PostgreSQL ON CONFLICT inserts, and every launch of a dated link records one).
DUE_UPSERT_SQL = """
INSERT INTO due_dates (course_id, source, key, title, due_at, url, updated_at)
{source}
ON CONFLICT ON CONSTRAINT uq_due_dates_course_source_key DO UPDATE
SET title = EXCLUDED.title, due_at = EXCLUDED.due_at, url = EXCLUDED.url, updated_at = EXCLUDED.updated_at
WHERE due_dates.due_at IS DISTINCT FROM EXCLUDED.due_at OR due_dates.title IS DISTINCT FROM EXCLUDED.title
   OR due_dates.url IS DISTINCT FROM EXCLUDED.url
RETURNING id
"""
DUE_UPSERT = text(
    DUE_UPSERT_SQL.format(source="VALUES (:course_id, :source, :key, :title, :due_at, :url, :updated_at)")
)


def record_due(session: Session, course_id: int, fact: DueFact) -> bool:
    """Store one fact; writes only when it is new or changed. True when something was written."""
    values = {
        "course_id": course_id,
        "source": fact.source.value,
        "key": fact.key,
        "title": fact.title,
        "due_at": fact.due_at,
        "url": fact.url,
        "updated_at": utcnow(),
    }
    return session.scalar(DUE_UPSERT, values) is not None


def replace_source(session: Session, course_id: int, source: DueSource, facts: Sequence[DueFact]) -> int:
    """Make a source's stored facts equal to a complete listing (upsert changed, delete gone); returns writes."""
    writes = sum(1 for fact in facts if record_due(session, course_id, fact))
    keys = [f.key for f in facts]
    gone = delete(DueDate).where(DueDate.course_id == course_id, DueDate.source == source)
    if keys:
        gone = gone.where(DueDate.key.not_in(keys))
    writes += int(session.execute(gone).rowcount or 0)  # type: ignore[attr-defined]
    return writes


def upcoming_for(session: Session, course_id: int, person_id: int, now: datetime, limit: int = 5) -> list[Deadline]:
    """The next deadlines a course member should see (course-wide today; per-student overrides would filter here)."""
    rows = session.scalars(
        select(DueDate).where(DueDate.course_id == course_id, DueDate.due_at >= now).order_by(DueDate.due_at)
    ).all()
    facts = [DueFact(r.source, r.key, r.title, r.due_at, r.url) for r in rows]
    return merge_deadlines(facts, now, limit)


def course_time_zone(session: Session, course_id: int) -> str:
    """The course's time zone name (UTC when unknown)."""
    return session.scalar(select(Course.time_zone).where(Course.id == course_id)) or "UTC"


def all_for_course(session: Session, course_id: int) -> list[DueDate]:
    """Every stored fact of a course (staff view), soonest first."""
    return list(session.scalars(select(DueDate).where(DueDate.course_id == course_id).order_by(DueDate.due_at)))
