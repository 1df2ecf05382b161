"""Term end: warn students 24 hours and 10 minutes before, then stop everything, archive, revoke access and report.

Runs from the periodic table; each step is idempotent (the course is closed once, warnings are sent once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Integer, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.disk_end import TERM_END_ACTOR
from classroom.models import AlertSent, Course, CoursePolicy, Enrollment, SshKey, Workspace
from classroom.notify import Message, notify_many
from classroom.roles import StaffLevel
from classroom.services.course_money import lock_course_money
from classroom.services.term_notices import course_notices, course_term, due_threshold
from classroom.services.workspaces import Job, request_stop
from classroom.sql.workspaces import REVOKE_STOPPED_AGENTS
from classroom.workspaces.lifecycle import WorkspaceState

S = WorkspaceState
LIVE_RUNNING = (S.RUNNING, S.STARTING, S.PROVISIONING)
WARN_BEFORE = timedelta(hours=24)  # the first warning (classroom.services.term_notices.THRESHOLDS)


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


def run_term_end(session: Session, now: datetime, *, agent_archives: bool = False) -> TermEndResult:
    """Warn courses ending within a day; close courses whose term is over (flushes; caller commits). On the
    agent's path (`agent_archives`) running workspaces are locked out for their final archive, not stopped."""
    result = TermEndResult()
    rows = session.execute(
        select(Course, CoursePolicy)
        .join(CoursePolicy, CoursePolicy.course_id == Course.id)
        .where(CoursePolicy.auto_close.is_(True), CoursePolicy.closed_at.is_(None), Course.term_end.is_not(None))
        .order_by(Course.id)  # one lock order for every pass: two passes at once never lock two courses crosswise
    ).all()
    for course, policy in rows:
        end = term_end_instant(course)
        assert end is not None
        if now > end:
            result.jobs += close_course(session, course, policy, now, agent_archives=agent_archives)
            result.closed.append(course.id)
        elif now >= end - WARN_BEFORE:
            result.warned += _warn(session, course, now)
    result.tokens_revoked = revoke_stopped_agents(session, now)
    return result


def revoke_stopped_agents(session: Session, now: datetime) -> int:
    """Revoke the agent tokens of closed courses' workspaces that have stopped (every pass; idempotent)."""
    return int(session.execute(REVOKE_STOPPED_AGENTS, {"now": now}).rowcount or 0)  # type: ignore[attr-defined]


def _warn(session: Session, course: Course, now: datetime) -> int:
    """Warn every active student at 24 hours and at 10 minutes before the term ends, once per threshold (recorded
    in alerts_sent, so a retried pass sends nothing twice): the budget figure and what happens to their files."""
    term = course_term(session, course.id)
    threshold = due_threshold(now, term.end) if term else None
    if term is None or threshold is None:
        return 0
    texts = course_notices(session, term, now)
    if not texts:
        return 0
    people = list(texts)
    fresh = session.scalars(
        insert(AlertSent)
        .from_select(
            ["course_id", "person_id", "kind", "day", "created_at"],
            select(
                literal(course.id),
                func.unnest(literal(people, ARRAY(Integer))),
                literal(f"term-end-{threshold}"),
                literal(course.term_end),
                func.now(),
            ),
        )  # fmt: skip
        .on_conflict_do_nothing(constraint="uq_alerts_sent_once")
        .returning(AlertSent.person_id)
    ).all()
    return notify_many(session, [Message(p, course.id, *texts[p]) for p in fresh])


def close_course(
    session: Session, course: Course, policy: CoursePolicy, now: datetime, *, agent_archives: bool = False
) -> list[Job]:
    """Apply the course's term-end actions once; returns the cloud jobs to run after the commit. On the agent's
    path a running workspace is locked out and asked for its final archive first; the retire flow stops it."""
    from provisioning.archive_start import lock_out_for_final_archive, lockouts_covered

    actions = policy.term_end_actions or {}
    jobs: list[Job] = []
    lock_course_money(session, course.id)  # before the workspaces: the lockouts' windows are judged against it
    mine = select(Workspace).where(Workspace.course_id == course.id)
    workspaces = session.scalars(mine.order_by(Workspace.id).with_for_update()).all()
    if actions.get("stop_all", True):
        wanted = [w for w in workspaces if agent_archives and w.state is S.RUNNING and w.archive_failed_at is None]
        covered = lockouts_covered(session, course.id, wanted, now)  # its window is the course's cost
        for ws in workspaces:
            if ws.id in covered:
                lock_out_for_final_archive(session, ws, now)
            elif ws.state in LIVE_RUNNING:
                jobs += request_stop(session, ws, actor_person_id=None, actor=TERM_END_ACTOR, reason="term ended")
                if ws in wanted:  # no money for its window: the retire flow verifies its last report if fresh,
                    _tell_refused(session, ws)  # else its start for the archive is refused: disk kept, staff told
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


def _tell_refused(session: Session, ws: Workspace) -> None:
    append_event(
        session, "workspace.final_archive_refused", course_id=ws.course_id, subject=str(ws.id),
        details={"why": "the course's money does not cover the final archive's window: stopped at once"},
    )  # fmt: skip


def _retire_disks(session: Session, workspaces: Sequence[Workspace], delete_after: datetime) -> list[Job]:
    """Disks end: each home is archived to S3 once its stop is observed, the disk deleted after the grace period."""
    from provisioning.retire import request_retire

    jobs: list[Job] = []
    for ws in workspaces:
        jobs += request_retire(session, ws, actor_person_id=None, actor=TERM_END_ACTOR, reason="term ended",
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
    """Email the final report to the instructors (once: close_course runs once per course)."""
    from classroom.services.final_report_mail import send_final_report

    send_final_report(session, course)


__all__ = ["TermEndResult", "close_course", "run_term_end", "term_end_instant"]
