"""The term's office-hours figures: requests, time to resolution (the seed's "resolved in under 15 minutes"),
messages, resets and debug sessions, and the most active staff, from the help requests and the audit chain.

For the help queue page now, and for the term's final report (one function the report can call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from classroom.models import AuditEvent, HelpRequest, Person

TARGET = timedelta(minutes=15)  # the seed's success metric
STAFF_ACTIONS = ("help.claimed", "help.resolved", "message.sent", "workspace.reset")


@dataclass(frozen=True)
class OfficeStats:
    """One course's office hours so far."""

    requests: int
    resolved: int
    median_resolution: timedelta | None
    within_target: int
    messages: int
    replies: int
    resets: int
    debug_sessions: int
    most_active: tuple[tuple[str, int], ...]  # (staff name, audited office-hours actions), most first, at most 3


def office_stats(session: Session, course_id: int) -> OfficeStats:
    """The figures, in three statements."""
    took = HelpRequest.resolved_at - HelpRequest.created_at
    requests, resolved, median, within = session.execute(
        select(
            func.count(),
            func.count(HelpRequest.resolved_at),
            func.percentile_disc(0.5).within_group(took),
            func.count().filter(took <= TARGET),
        ).where(HelpRequest.course_id == course_id)
    ).one()
    counts = dict(
        session.execute(
            select(AuditEvent.action, func.count())
            .where(AuditEvent.course_id == course_id)
            .where(
                or_(
                    AuditEvent.action.in_(("message.sent", "message.replied", "workspace.reset")),
                    AuditEvent.action.like("debug.%started"),
                )
            )  # fmt: skip  (debug sessions: issue 17 item 3)
            .group_by(AuditEvent.action)
        ).all()
    )
    active = session.execute(
        select(Person.name, func.count())
        .select_from(AuditEvent)
        .join(Person, Person.id == AuditEvent.actor_person_id)
        .where(AuditEvent.course_id == course_id)
        .where(or_(AuditEvent.action.in_(STAFF_ACTIONS), AuditEvent.action.like("debug.%")))
        .group_by(Person.id, Person.name)
        .order_by(func.count().desc(), Person.name)
        .limit(3)
    ).all()
    return OfficeStats(
        requests=int(requests),
        resolved=int(resolved),
        median_resolution=median,
        within_target=int(within),
        messages=int(counts.get("message.sent", 0)),
        replies=int(counts.get("message.replied", 0)),
        resets=int(counts.get("workspace.reset", 0)),
        debug_sessions=sum(int(n) for action, n in counts.items() if action.startswith("debug.")),
        most_active=tuple((str(name), int(n)) for name, n in active),
    )
