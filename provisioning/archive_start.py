"""Archives before the disks end, on the agent's path (real EC2): ask running workspaces' agents in the last hour
before term end, and start a stopped workspace for its archive only when the course's money allows.

The decisions are pure (classroom.workspaces.archive_rules); these shells load, claim and commit, never holding a row
lock across a cloud call. A start for the archive only is the usual start (desired running, `start_workspace`)
with `archiving_until` set: the sweep and the lease spare it until then, and its running is booked to the course
(an 'archive_run' line, classroom.sql.metering), not to the student's ledger; the retire flow verifies the agent's
archive, stops the instance and, after the grace, deletes the disk. Money refused, a failed start or no archive
in the window: the disk is kept and the course's instructors are told (provisioning.agent_archive.give_up).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.policy import money
from classroom.models import Course, CoursePolicy, Workspace
from classroom.services.course_money import course_positions, lock_course_money
from classroom.services.workspaces import Job, request_start
from classroom.workspaces.archive_rules import ARCHIVE_WINDOW, ask_in_lead, in_lead, start_allowed, window_cost
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import PriceError, RegionPrices, load_prices
from provisioning.agent_archive import ask_again, give_up
from provisioning.term_end import term_end_instant

S = WorkspaceState


def ask_before_term_end(session: Session, now: datetime, lead: timedelta) -> list[int]:
    """Ask the agents of running workspaces in courses ending within `lead` for their home's archive (again when
    the reported one went stale); audited; commits. Rows locked elsewhere are left for the next pass."""
    near = select(Workspace, Course).join(Course, Course.id == Workspace.course_id).join(
        CoursePolicy, CoursePolicy.course_id == Course.id
    ).where(
        Workspace.state == S.RUNNING,
        Workspace.archive_failed_at.is_(None),
        Workspace.archiving_until.is_(None),
        CoursePolicy.closed_at.is_(None),
        Course.term_end.between(now.date() - timedelta(days=1), now.date() + timedelta(days=1)),  # any time zone
    ).with_for_update(of=Workspace, skip_locked=True)  # fmt: skip
    asked = []
    for ws, course in session.execute(near).all():
        if not in_lead(now, term_end_instant(course), lead):
            continue
        if ask_in_lead(ws.archive_requested_at, ws.archive_reported_at, ws.home_changed_at, now):
            again = ws.archive_requested_at is not None
            ask_again(ws, now)
            append_event(
                session, "workspace.archive_requested", course_id=ws.course_id, subject=str(ws.id),
                details={"why": "home changed after its archive" if again else "term ends soon"},
            )  # fmt: skip
            asked.append(ws.id)
    session.commit()
    return asked


def start_for_archive(session: Session, workspace_id: int, now: datetime, prices: RegionPrices) -> list[Job]:
    """Start a stopped workspace for its archive only, if the course's money covers the window; else keep its
    disk and tell staff. Commits; returns the start job to release."""
    ws = session.get(Workspace, workspace_id, populate_existing=True)
    assert ws is not None
    cost = _window_cost(ws, prices)
    lock_course_money(session, ws.course_id)  # held to the commit: the next start sees this one's window
    position = next(iter(course_positions(session, now, prices, ws.course_id)), None)
    committed, total = (position.committed, position.total) if position else (None, None)
    if cost is None or not start_allowed(committed, total, cost):
        session.commit()
        left = money(total - committed) if position else "nothing (no budget set)"
        need = money(cost) if cost is not None else "an unknown amount (no price)"
        why = f"starting it to archive the home needs {need}; the course has {left} left"
        give_up(session, workspace_id, why, transient=False)  # staff can retry once the course has money
        return []
    ws = session.scalar(select(Workspace).where(Workspace.id == workspace_id).with_for_update())
    assert ws is not None
    if ws.state not in (S.STOPPED, S.HIBERNATED) or ws.archiving_until is not None or ws.archive_failed_at:
        session.commit()  # moved meanwhile: the retire flow looks again
        return []
    ws.archiving_until = now + ARCHIVE_WINDOW
    ws.archive_started_at = now  # its running until the next stop is the course's line, not the student's
    ask_again(ws, now)
    ws.locked_out_at, ws.lockout_answered_at = now, None  # no session while it runs for its archive
    ws.agent_token_revoked_at = None  # its agent must be heard for the archive; revoked again once it stops
    todo = request_start(session, ws, actor_person_id=None, actor="retire")
    append_event(
        session, "workspace.archive_start", course_id=ws.course_id, subject=str(ws.id),
        details={"until": ws.archiving_until.isoformat(), "at_most": money(cost), "booked_to": "course"},
    )  # fmt: skip
    session.commit()
    return todo


def _window_cost(ws: Workspace, prices: RegionPrices) -> Decimal | None:
    try:
        return window_cost(prices.running_hourly(ws.instance_type), prices.storage_hourly(ws.volume_gb))
    except PriceError:
        return None


def lockouts_covered(session: Session, course_id: int, workspaces: Sequence[Workspace], now: datetime) -> set[int]:
    """The running workspaces whose final-archive window the course's money covers, in order, each one's window
    added to the committed money before the next is judged (fail closed: no price or no position, none)."""
    if not workspaces:
        return set()
    try:
        prices = load_prices().region(workspaces[0].region)
    except PriceError:
        return set()
    position = next(iter(course_positions(session, now, prices, course_id)), None)
    if position is None:
        return set()
    committed, covered = position.committed, set()
    for ws in workspaces:
        cost = _window_cost(ws, prices)
        if cost is not None and start_allowed(committed, position.total, cost):
            committed += cost
            covered.add(ws.id)
    return covered


def lock_out_for_final_archive(session: Session, ws: Workspace, now: datetime) -> None:
    """Term end on the agent's path, on the locked row of a running workspace: instead of stopping it at once,
    lock its student out (the next heartbeat answer ends their sessions and carries no keys) and ask for the
    final archive, taken only from a later heartbeat. The sweep and the lease spare it for ARCHIVE_WINDOW (the
    course's cost, as a start for the archive only); the retire flow verifies the archive, then stops it; no
    archive in time: it stops and its disk is kept (fail closed). Only when the course's money covers the window
    (`lockouts_covered`). Audited; flushes."""
    ws.locked_out_at, ws.lockout_answered_at = now, None
    ask_again(ws, now)  # a report made before the lockout is forgotten
    ws.archiving_until, ws.archive_started_at = now + ARCHIVE_WINDOW, now
    append_event(
        session, "workspace.locked_out", course_id=ws.course_id, subject=str(ws.id),
        details={"why": "term ended: final archive after the lockout", "until": ws.archiving_until.isoformat()},
    )  # fmt: skip
    session.flush()
