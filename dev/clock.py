"""Development only: move a course's (or a workshop's) dates and run its end-of-term pass at a chosen instant,
so a newcomer in `make run` sees warnings, stop, archive and the final report without waiting for the date.

Nothing fakes the process clock. "Term ends in N minutes" sets the course's last day to the course-local day
that instant falls on, then runs the term-end pass as it would run N minutes before the end of that day (the
pass takes `now` as an argument); the real sweep still sees the real date. "Now" sets the last day to
yesterday, so the pass at the real time closes the course and every later sweep agrees. Every move is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Course, CoursePolicy, Workshop
from classroom.services.workspaces import Job
from provisioning.term_end import run_term_end, term_end_instant
from provisioning.workshop_end import run_workshop_ends

CHOICES = {"25h": 25 * 60, "11m": 11, "now": 0}  # the control's buttons: minutes before the term ends


@dataclass
class Travelled:
    """What a move did: the instant the pass ran at, a sentence for the page, the cloud jobs to release."""

    at: datetime
    summary: str
    jobs: list[Job] = field(default_factory=list)


def move_term_end(session: Session, course: Course, minutes: int, now: datetime) -> Travelled:
    """Set the course's last day so its term ends `minutes` from the pass's instant, then run the pass (flushes)."""
    policy = session.get(CoursePolicy, course.id)
    if policy is None:
        raise ValueError("This course is not set up yet: save its set-up wizard first.")
    previous = course.term_end
    zone_now = now.astimezone(ZoneInfo(course.time_zone))
    course.term_end = (zone_now + timedelta(minutes=minutes)).date() if minutes else zone_now.date() - timedelta(days=1)
    if course.term_start is not None and course.term_start > course.term_end:
        course.term_start = course.term_end
    end = term_end_instant(course)
    assert end is not None
    at = end - timedelta(minutes=minutes) if minutes else now
    if policy.closed_at is not None and end > now:
        policy.closed_at = None  # a term moved past now reopens the course, as the wizard does
    details = {"term_end": str(course.term_end), "was": str(previous), "pass_at": at.isoformat()}
    append_event(session, "dev.time_travel", course_id=course.id, subject=str(course.id), details=details)
    session.flush()
    result = run_term_end(session, at)
    summary = (
        f"Last day set to {course.term_end}; term-end pass run as at {at.isoformat(timespec='minutes')}: "
        f"{result.warned} warned, {'closed' if course.id in result.closed else 'not closed'}, "
        f"{len(result.jobs)} cloud jobs queued."
    )
    return Travelled(at, summary, result.jobs)


def end_workshop(session: Session, workshop: Workshop, *, skip_extension: bool, now: datetime) -> Travelled:
    """End a workshop now (its end moved to now), or run its pass as at the end of its extension (flushes)."""
    if skip_extension:
        at = max(now, workshop.ends_at + timedelta(days=workshop.extension_days))
    else:
        if workshop.ends_at > now:
            workshop.starts_at = min(workshop.starts_at, now - timedelta(minutes=1))
            workshop.ends_at = now
        at = now
    append_event(session, "dev.time_travel", course_id=workshop.course_id, subject=f"workshop:{workshop.id}",
                 details={"ends_at": workshop.ends_at.isoformat(), "pass_at": at.isoformat()})  # fmt: skip
    session.flush()
    result = run_workshop_ends(session, at)
    summary = (
        f"Workshop pass run as at {at.isoformat(timespec='minutes')}: "
        f"{'ended' if workshop.id in result.ended else 'already ended'}, "
        f"{'purged' if workshop.id in result.purged else 'not purged'}, {len(result.jobs)} cloud jobs queued."
    )
    return Travelled(at, summary, result.jobs)
