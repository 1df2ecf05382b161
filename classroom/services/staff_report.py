"""What the staff did in a term, from the audit trail: debug sessions, resets, messages, the most active staff
member. One grouped query; the term's final report adds these lines."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.models import AuditEvent, Person

COUNTED = {"debug.session.start": "debug sessions", "workspace.reset": "workspace resets"}
MESSAGE_PREFIX = "message."  # staff messages (issue 17, item 4) are audited under message.*


@dataclass(frozen=True)
class StaffActivity:
    """Counts per kind, and the staff member with the most such actions (name, count)."""

    debug_sessions: int
    resets: int
    messages: int
    most_active: tuple[str, int] | None

    def lines(self) -> str:
        """The report's paragraph. Pure."""
        top = f"; most active: {self.most_active[0]} ({self.most_active[1]} actions)" if self.most_active else ""
        return (f"Staff: {self.debug_sessions} debug session(s), {self.resets} workspace reset(s), "
                f"{self.messages} message(s){top}.")  # fmt: skip


def staff_activity(session: Session, course_id: int) -> StaffActivity:
    """Count the course's staff actions in the audit trail."""
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.actor_person_id, func.count())
        .where(
            AuditEvent.course_id == course_id,
            AuditEvent.actor_person_id.is_not(None),
            (AuditEvent.action.in_(list(COUNTED))) | AuditEvent.action.startswith(MESSAGE_PREFIX),
        )
        .group_by(AuditEvent.action, AuditEvent.actor_person_id)
    ).all()
    kinds: Counter[str] = Counter()
    people: Counter[int] = Counter()
    for action, actor, n in rows:
        kinds["message" if action.startswith(MESSAGE_PREFIX) else action] += n
        people[actor] += n
    top = None
    if people:
        actor, n = people.most_common(1)[0]
        person = session.get(Person, actor)
        top = (person.display_name if person else f"person {actor}", n)
    return StaffActivity(kinds["debug.session.start"], kinds["workspace.reset"], kinds["message"], top)
