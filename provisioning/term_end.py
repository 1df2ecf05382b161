"""Term end: warn students an hour before, then stop everything, archive, revoke access and report.

Runs from the periodic table; each step is idempotent (the course is closed once, warnings are sent once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.policy import money
from classroom.models import AlertSent, Course, CoursePolicy, Enrollment, SpendDaily, SshKey, Workspace
from classroom.notify import Message, notify_instructors, notify_many
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.services import Job, request_stop

S = WorkspaceState
LIVE_RUNNING = (S.RUNNING, S.STARTING, S.PROVISIONING)
WARN_BEFORE = timedelta(hours=1)


@dataclass
class TermEndResult:
    """What one pass did."""

    warned: int = 0
    closed: list[int] = field(default_factory=list)
    tokens_revoked: int = 0
    jobs: list[Job] = field(default_factory=list)


def term_end_instant(course: Course) -> datetime | None:
    """The end of the term's last day in the course's time zone (23:59:59.999999), as UTC."""
    if course.term_end is None:
        return None
    return datetime.combine(course.term_end, time.max, ZoneInfo(course.time_zone))


def run_term_end(session: Session, now: datetime) -> TermEndResult:
    """Warn courses ending within the hour; close courses whose term is over (flushes; caller commits)."""
    result = TermEndResult()
    rows = session.execute(
        select(Course, CoursePolicy)
        .join(CoursePolicy, CoursePolicy.course_id == Course.id)
        .where(CoursePolicy.auto_close.is_(True), CoursePolicy.closed_at.is_(None), Course.term_end.is_not(None))
    ).all()
    for course, policy in rows:
        end = term_end_instant(course)
        assert end is not None
        if now > end:
            result.jobs += close_course(session, course, policy, now)
            result.closed.append(course.id)
        elif now >= end - WARN_BEFORE:
            result.warned += _warn(session, course)
    result.tokens_revoked = revoke_stopped_agents(session, now)
    return result


# Revocation reaches the instance: a closed course's keys are revoked at once, but each agent keeps its token until
# its instance has stopped, so its last heartbeats fetch the empty key list (and, refused afterwards, wipe keys).
REVOKE_STOPPED_AGENTS = text("""
UPDATE workspaces w SET agent_token_revoked_at = :now
FROM course_policies p
WHERE p.course_id = w.course_id AND p.closed_at IS NOT NULL AND p.term_end_actions ->> 'revoke_access' = 'true'
  AND w.agent_token_revoked_at IS NULL
  AND w.state IN ('stopped', 'hibernated', 'terminated', 'failed')
  AND NOT EXISTS (SELECT 1 FROM student_restores r WHERE r.workspace_id = w.id AND r.closed_at IS NULL)
""")


def revoke_stopped_agents(session: Session, now: datetime) -> int:
    """Revoke the agent tokens of closed courses' workspaces that have stopped (every pass; idempotent)."""
    return int(session.execute(REVOKE_STOPPED_AGENTS, {"now": now}).rowcount or 0)  # type: ignore[attr-defined]


def _warn(session: Session, course: Course) -> int:
    """Tell students with something running that it stops at the end of the day (once); two statements in all."""
    running = (
        select(
            Workspace.course_id, Workspace.person_id, literal("term-end-warning"), literal(course.term_end), func.now()
        )
        .distinct()
        .where(Workspace.course_id == course.id, Workspace.state.in_(LIVE_RUNNING))
    )
    fresh = session.scalars(
        insert(AlertSent)
        .from_select(["course_id", "person_id", "kind", "day", "created_at"], running)
        .on_conflict_do_nothing(constraint="uq_alerts_sent_once")
        .returning(AlertSent.person_id)
    ).all()
    subject = f"[{course.display_name}] Your workspace stops at the end of the term"
    body = (
        "The term ends tonight at midnight (course time). Save your work now: running workspaces "
        "will be stopped and archived, and student access ends."
    )
    return notify_many(session, [Message(person_id, course.id, subject, body) for person_id in fresh])


def close_course(session: Session, course: Course, policy: CoursePolicy, now: datetime) -> list[Job]:
    """Apply the course's term-end actions once; returns the cloud jobs to run after the commit."""
    actions = policy.term_end_actions or {}
    jobs: list[Job] = []
    workspaces = session.scalars(select(Workspace).where(Workspace.course_id == course.id).with_for_update()).all()
    if actions.get("stop_all", True):
        for ws in workspaces:
            if ws.state in LIVE_RUNNING:
                jobs += request_stop(session, ws, actor_person_id=None, actor="term-end", reason="term ended")
    jobs += _retire_disks(session, workspaces, now + timedelta(days=policy.disk_grace_days))
    if actions.get("revoke_access"):
        _revoke(session, course, now)
    if actions.get("final_report"):
        _final_report(session, course, policy)
    policy.closed_at = now
    append_event(
        session, "course.closed", course_id=course.id, details={"actions": actions, "workspaces": len(workspaces)}
    )
    session.flush()
    return jobs


def _retire_disks(session: Session, workspaces: Sequence[Workspace], delete_after: datetime) -> list[Job]:
    """Disks end: each home is archived to S3 once its stop is observed, the disk deleted after the grace period."""
    from provisioning.retire import request_retire

    jobs: list[Job] = []
    for ws in workspaces:
        jobs += request_retire(session, ws, actor_person_id=None, actor="term-end", reason="term ended",
                               after=delete_after)  # fmt: skip
    return jobs


def _revoke(session: Session, course: Course, now: datetime) -> None:
    students = select(Enrollment.person_id).where(
        Enrollment.course_id == course.id, Enrollment.level == StaffLevel.STUDENT
    )
    session.execute(
        update(SshKey)
        .where(SshKey.course_id == course.id, SshKey.person_id.in_(students), SshKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.flush()  # the stops requested above; agents of instances not yet stopped keep their tokens for now
    revoke_stopped_agents(session, now)


def _final_report(session: Session, course: Course, policy: CoursePolicy) -> None:
    spent = session.execute(
        select(
            SpendDaily.person_id,
            func.sum(SpendDaily.compute + SpendDaily.storage),
            func.sum(SpendDaily.running_seconds),
        )
        .where(SpendDaily.course_id == course.id)
        .group_by(SpendDaily.person_id)
    ).all()
    total = sum((Decimal(s) for _, s, _ in spent), Decimal(0))
    hours = sum((Decimal(h) for _, _, h in spent), Decimal(0)) / 3600
    over = sum(1 for _, s, _ in spent if Decimal(s) > policy.budget_per_student)
    average = total / len(spent) if spent else Decimal(0)
    body = (
        f"{course.display_name} has closed.\n\nTotal spend: {money(total)} of {money(policy.total_budget)}\n"
        f"Students with spend: {len(spent)}; average {money(average)} of {money(policy.budget_per_student)}\n"
        f"Over their budget: {over}\nCompute hours: {hours.quantize(Decimal('0.1'))}\n\n"
        f"Workspaces were stopped; each home is archived to S3 (kept {policy.archive_retention_days} days) and its "
        f"disk deleted {policy.disk_grace_days} days after the term. The audit trail and cost report stay available "
        "in Cloud Workstation."
    )
    notify_instructors(session, course.id, subject=f"[{course.display_name}] Final course report", body=body)


__all__ = ["TermEndResult", "close_course", "run_term_end", "term_end_instant"]
