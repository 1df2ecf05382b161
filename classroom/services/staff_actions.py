"""A staff member starts or stops a student's workspace: the reason is required, audited and told to the student.

Pure parsing of the reason plus a thin shell that appends the audit event and writes the student's notification
and email (flush, never commit: the view commits with the workspace's change).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Course, Person, Workspace
from classroom.notify import notify

REASON_MAX = 500
PAST = {"start": "started", "stop": "stopped"}


class ReasonError(ValueError):
    """The reason is missing or too long (the message says which)."""


def parse_reason(raw: str | None) -> str:
    """The reason as the student will read it: blanks collapsed, at least 3 characters, at most REASON_MAX."""
    reason = " ".join((raw or "").split())
    if len(reason) < 3:
        raise ReasonError("Say why, in a few words: the student is told who did it and why.")
    if len(reason) > REASON_MAX:
        raise ReasonError(f"Keep the reason to {REASON_MAX} characters (this one has {len(reason)}).")
    return reason


def tell_student(session: Session, course: Course, ws: Workspace, actor: Person, action: str, reason: str) -> None:
    """Audit the staff action with its reason, and notify (and email) the workspace's student."""
    verb = PAST[action]
    name = ws.link_title or ws.template_id
    append_event(
        session,
        f"workspace.staff_{action}",
        actor_person_id=actor.id,
        course_id=course.id,
        subject=str(ws.id),
        details={"student": ws.person_id, "reason": reason},
    )
    notify(
        session,
        person_id=ws.person_id,
        course_id=course.id,
        subject=f"[{course.display_name}] {actor.display_name} {verb} your workspace",
        body=f"{actor.display_name} {verb} your workspace {name} ({ws.instance_type}). Reason: {reason}",
    )
