"""Term-end warnings, 24 hours and 10 minutes before the term ends: one text for the tool's banner, the email and
the SSH login banner, with the student's budget figure and what will happen to their files.

`due_threshold` and `notice_text` are pure; `course_notices` loads the figures of a course's students in one
statement and `student_notice` one student's (for the pages, the agent's heartbeat and the local runtime).
Sending once per student per threshold is the caller's (provisioning.term_end, through alerts_sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import literal, select, text
from sqlalchemy.orm import Session

from classroom.budget.policy import money
from classroom.models import Course, CoursePolicy, EnrollmentStatus
from classroom.models.people import course_display_name
from classroom.roles import StaffLevel
from classroom.sql import sql_states, sql_value
from classroom.workspaces.lifecycle import BILLING_DISK

THRESHOLDS = (("10min", timedelta(minutes=10)), ("24h", timedelta(hours=24)))  # the tightest first


def due_threshold(now: datetime, end: datetime | None) -> str | None:
    """The warning whose window `now` is in ("10min" in the last 10 minutes, "24h" in the last day), or None."""
    if end is None or now > end:
        return None
    return next((name for name, before in THRESHOLDS if now >= end - before), None)


@dataclass(frozen=True)
class Fate:
    """What happens to a student's files at term end (from the course's settings)."""

    has_home: bool  # a workspace whose disk still exists
    archive_prefix: str  # where in S3 the homes go
    kept_until: date  # the archives expire after this day (the course's retention)
    disk_deleted_on: date  # the disks are deleted on this day (the course's grace period)


def time_left(end: datetime, now: datetime) -> str:
    """ "10 minutes", "about 23 hours": how long until the term ends, in words (rounded up below an hour)."""
    seconds = max(0, int((end - now).total_seconds()))
    if seconds < 3600:
        minutes = -(-seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(seconds / 3600)
    return f"about {hours} hour{'s' if hours != 1 else ''}"


def notice_text(
    course: str, end_local: datetime, now: datetime, spent: Decimal, cap: Decimal, fate: Fate
) -> tuple[str, str]:
    """Pure: the subject and body of a warning (the same words in the tool, the email and the login banner)."""
    when = "in " + time_left(end_local, now)
    at = end_local.strftime("%A %d %B %Y, %H:%M %Z")
    figure = f"Your budget: {money(spent)} spent of {money(cap)}, {money(max(cap - spent, Decimal(0)))} left."
    files = (
        f"Your workspace stops at the end of the term. Its home folder is then archived to the course's S3 archive "
        f"({fate.archive_prefix}) and kept until {fate.kept_until:%d %B %Y}; the workspace's disk is deleted on "
        f"{fate.disk_deleted_on:%d %B %Y}. Save anything you need now: after the term, ask your instructor for a copy."
        if fate.has_home
        else "You have no workspace, so no files are kept for you."
    )
    subject = f"[{course}] The term ends {when}"
    return subject, f"The term ends {when}, at {at}. {figure} {files}"


# One statement for every student of the course (or one): spend, cap, and whether a disk exists.
FIGURES_SQL = text(f"""
SELECT e.person_id,
       COALESCE(p.budget_per_student, 0)
         + COALESCE((SELECT SUM(g.amount) FROM budget_grants g
                     WHERE g.course_id = e.course_id AND g.person_id = e.person_id), 0) AS cap,
       COALESCE((SELECT t.spent FROM spend_totals t
                 WHERE t.course_id = e.course_id AND t.person_id = e.person_id), 0) AS spent,
       EXISTS (SELECT 1 FROM workspaces w WHERE w.course_id = e.course_id AND w.person_id = e.person_id
               AND w.state IN {sql_states(BILLING_DISK)}) AS has_home
FROM enrollments e JOIN course_policies p ON p.course_id = e.course_id
WHERE e.course_id = :course AND e.level = {sql_value(StaffLevel.STUDENT)}
  AND e.status = {sql_value(EnrollmentStatus.ACTIVE)}
  AND (CAST(:person AS int) IS NULL OR e.person_id = :person)
""")


@dataclass(frozen=True)
class CourseTerm:
    """What the texts need about a course."""

    course_id: int
    name: str
    term_end: date
    time_zone: str
    retention_days: int
    grace_days: int

    @property
    def end(self) -> datetime:
        return datetime.combine(self.term_end, time.max, ZoneInfo(self.time_zone))


def course_term(session: Session, course_id: int) -> CourseTerm | None:
    """The course's term end and archive settings (None: no term end or no policy); one statement."""
    r = session.execute(
        select(Course.label, Course.title, Course.context_id, Course.term_end, Course.time_zone,
               literal(True).label("has_policy"),
               CoursePolicy.archive_retention_days, CoursePolicy.disk_grace_days)
        .join(CoursePolicy, CoursePolicy.course_id == Course.id)
        .where(Course.id == course_id)
    ).one_or_none()  # fmt: skip
    return term_of_row(course_id, r) if r is not None else None


def course_notices(
    session: Session, term: CourseTerm, now: datetime, person_id: int | None = None
) -> dict[int, tuple[str, str]]:
    """Each active student's (subject, body) now (or one student's)."""
    end = term.end
    day_after = end.date() + timedelta(days=1)
    fate_of = {
        has: Fate(has, f"courses/c{term.course_id}/archives/", day_after + timedelta(days=term.retention_days),
                  day_after + timedelta(days=term.grace_days))
        for has in (True, False)
    }  # fmt: skip
    rows = session.execute(FIGURES_SQL, {"course": term.course_id, "person": person_id})
    return {
        r.person_id: notice_text(term.name, end, now, Decimal(r.spent), Decimal(r.cap), fate_of[r.has_home])
        for r in rows
    }


def term_of_row(course_id: int, row: Any) -> CourseTerm | None:
    """The course's term from a row read with the course's and its policy's columns (`course_term`'s, or the
    heartbeat's: see LEASE_STUDENT_SQL); None: no term end or no policy."""
    if not row.has_policy or row.term_end is None:
        return None
    return CourseTerm(course_id, course_display_name(row.label, row.title, row.context_id), row.term_end,
                      row.time_zone, row.archive_retention_days, row.disk_grace_days)  # fmt: skip


def student_notice(session: Session, course_id: int, person_id: int, now: datetime) -> str | None:
    """The warning to show a student now (banner, login banner), or None outside the last day of the term."""
    return term_notice(session, course_term(session, course_id), person_id, now)


def term_notice(session: Session, term: CourseTerm | None, person_id: int, now: datetime) -> str | None:
    """`student_notice` for a course term already loaded."""
    if term is None or due_threshold(now, term.end) is None:
        return None
    found = course_notices(session, term, now, person_id).get(person_id)
    return found[1] if found else None
