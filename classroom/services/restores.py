"""Restore a student after term end (an incomplete grade): the archived home back in a fresh workspace, access
reopened for that student only for 1–60 days (to the end of the last day, course time), an optional top-up.

Access after term end is closed by the course's term end date (launch check and sweep) and by the revoked SSH
keys; an open restore moves that date for one student (`restored_ends`, read by both) and un-revokes the keys
term end revoked. `provisioning.restore_end` closes it again once the days have run out: keys revoked, the workspace
stopped, archived again and its disk deleted after the course's grace (provisioning.retire). All audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from classroom.audit import append_event
from classroom.budget.policy import PolicyView
from classroom.models import (
    Course,
    CoursePolicy,
    Enrollment,
    SshKey,
    StudentRestore,
    Workspace,
    WorkspaceArchive,
)
from classroom.notify import notify
from classroom.roles import StaffLevel
from classroom.services.opening import workspace_key
from classroom.workspaces.lifecycle import ENDED
from config.catalog import load_catalog

if TYPE_CHECKING:
    from classroom.services.workspaces import Job

MAX_DAYS = 60
MAX_TOP_UP = Decimal(1000)


class RestoreError(ValueError):
    """A restore that cannot be made; the message says why (nothing was written)."""


@dataclass(frozen=True)
class RestoreRequest:
    """What the instructor asked: whom, for how many days, and how much extra budget."""

    person_id: int
    days: int
    top_up: Decimal


def parse_request(form: dict[str, str]) -> RestoreRequest:
    """Pure: the form's fields, checked (RestoreError with what to fix)."""
    try:
        person_id, days = int(form.get("person_id", "")), int(form.get("days", ""))
    except ValueError:
        raise RestoreError("Pick a student and a number of days (1 to 60).") from None
    if not 0 < person_id < 2**31:  # an id the database can hold
        raise RestoreError("Pick a student from the list.")
    if not 1 <= days <= MAX_DAYS:
        raise RestoreError("The number of days must be between 1 and 60.")
    raw = (form.get("top_up") or "0").strip().lstrip("$")
    try:
        top_up = Decimal(raw)
    except InvalidOperation:
        raise RestoreError("The budget top-up must be an amount in dollars, e.g. 10 or 12.50.") from None
    if not top_up.is_finite() or not Decimal(0) <= top_up <= MAX_TOP_UP:
        raise RestoreError("The budget top-up must be between $0 and $1,000.")
    return RestoreRequest(person_id, days, top_up)


def access_end(today: date, days: int, zone: str) -> datetime:
    """Pure: the end of the restore's last day in the course's time zone (today counts as day 0), aware."""
    return datetime.combine(today + timedelta(days=days), time.max, ZoneInfo(zone))


def latest_archive(session: Session, course_id: int, person_id: int) -> WorkspaceArchive | None:
    """The student's newest archived home in the course that is still kept (None: nothing to restore; a purged
    archive's object is gone from the bucket)."""
    return session.scalar(
        select(WorkspaceArchive)
        .join(Workspace, Workspace.id == WorkspaceArchive.workspace_id)
        .where(WorkspaceArchive.course_id == course_id, Workspace.person_id == person_id)
        .where(WorkspaceArchive.purged_at.is_(None))
        .order_by(WorkspaceArchive.created_at.desc(), WorkspaceArchive.id.desc())
        .limit(1)
    )


def open_restore(session: Session, course_id: int, person_id: int) -> StudentRestore | None:
    return session.scalar(
        select(StudentRestore).where(
            StudentRestore.course_id == course_id,
            StudentRestore.person_id == person_id,
            StudentRestore.closed_at.is_(None),
        )
    )


def restore_student(
    session: Session, course: Course, req: RestoreRequest, *, actor_id: int, now: datetime
) -> tuple[StudentRestore, list[Job]]:
    """Create the restore (once: a second click returns the open one), the top-up, and the fresh workspace whose
    home is filled from the archive; reopen the student's keys; audited (flushes; the caller commits)."""
    from classroom.services.budgets import BudgetError
    from classroom.services.grants import grant_budget
    from classroom.services.workspaces import request_workspace

    student = session.scalar(
        select(Enrollment).where(
            Enrollment.course_id == course.id,
            Enrollment.person_id == req.person_id,
            Enrollment.level == StaffLevel.STUDENT,
        )
    )
    if student is None:
        raise RestoreError("That person is not a student of this course.")
    policy = session.get(CoursePolicy, course.id)
    if policy is None or policy.closed_at is None:
        raise RestoreError("The term has not closed yet: the student still has access, so there is nothing to restore.")
    archive = latest_archive(session, course.id, req.person_id)
    if archive is None:
        raise RestoreError("This student has no archived home in this course, so nothing can be restored.")
    old = session.get(Workspace, archive.workspace_id)
    template = load_catalog().get(old.template_id) if old else None
    if old is None or template is None:
        raise RestoreError("The template of the archived workspace is no longer offered; nothing was restored.")
    key = workspace_key(policy.workspace_scope, old.link_key, template.id)  # where the student's launch looks
    until = access_end(now.astimezone(ZoneInfo(course.time_zone)).date(), req.days, course.time_zone)
    row_id = session.scalar(
        insert(StudentRestore)
        .values(
            course_id=course.id,
            person_id=req.person_id,
            archive_id=archive.id,
            days=req.days,
            top_up=req.top_up,
            access_until=until,
            created_by=actor_id,
            created_at=now,
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["course_id", "person_id"], index_where=text("closed_at IS NULL"))
        .returning(StudentRestore.id)
    )
    if row_id is None:  # already restored (a double click, or an earlier restore still open)
        existing = open_restore(session, course.id, req.person_id)
        assert existing is not None
        return existing, []
    restore = session.get(StudentRestore, row_id)
    assert restore is not None
    if req.top_up > 0:
        try:
            grant_budget(session, course, req.person_id, req.top_up, f"restore #{row_id} ({req.days} days)", actor_id)
        except BudgetError as exc:
            raise RestoreError(str(exc)) from exc
    _set_aside(session, course.id, req.person_id, key, row_id)
    ws, jobs = request_workspace(
        session, course_id=course.id, person_id=req.person_id, link_key=key,
        link_title=f"Restored home ({old.link_title or old.link_key})", template=template, region=old.region,
    )  # fmt: skip
    restore.workspace_id = ws.id
    reopened = _reopen_keys(session, course.id, req.person_id, policy.closed_at)
    append_event(
        session,
        "student.restored",
        actor_person_id=actor_id,
        course_id=course.id,
        subject=str(req.person_id),
        details={"restore": row_id, "archive": archive.s3_key, "sha256": archive.sha256, "workspace": ws.id,
                 "days": req.days, "top_up": str(req.top_up), "until": until.isoformat(), "keys": reopened},
    )  # fmt: skip
    day = until.strftime("%A %d %B %Y")
    notify(session, person_id=req.person_id, course_id=course.id,
           subject=f"[{course.display_name}] Your workspace is back until {day}",
           body=f"Your instructor restored your archived home in a fresh Cloud Workstation workspace. You can use it "
           f"until the end of {day} (course time); then it stops and is archived again. "
           + (f"Your budget was topped up by ${req.top_up:.2f}." if req.top_up > 0 else ""))  # fmt: skip
    session.flush()
    return restore, jobs


def _set_aside(session: Session, course_id: int, person_id: int, key: str, restore_id: int) -> None:
    """A workspace still waiting for its disk's deletion (term end's grace) holds the key the student's launch
    looks for: it is renamed aside (it keeps retiring), so the launch reaches the restored one. Any other live
    workspace means access was never closed for it: refused."""
    live = session.scalar(
        select(Workspace)
        .where(
            Workspace.course_id == course_id,
            Workspace.person_id == person_id,
            Workspace.link_key == key,
            Workspace.state.not_in(ENDED),
        )  # fmt: skip
        .with_for_update()
    )
    if live is None:
        return
    if live.retire_after is None:
        raise RestoreError("This student still has a workspace that term end did not close; nothing was restored.")
    live.link_key = f"{key}#before-restore-{restore_id}"[:255]
    session.flush()


def _reopen_keys(session: Session, course_id: int, person_id: int, closed_at: datetime) -> int:
    """Un-revoke the keys term end revoked (not those the student removed; never a second active fingerprint)."""
    other = aliased(SshKey)
    active_twin = exists().where(and_(other.fingerprint == SshKey.fingerprint, other.revoked_at.is_(None)))
    result = session.execute(
        update(SshKey)
        .where(
            SshKey.course_id == course_id, SshKey.person_id == person_id, SshKey.revoked_at == closed_at, ~active_twin
        )  # fmt: skip
        .values(revoked_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def restored_ends(session: Session, now: datetime) -> dict[tuple[int, int], datetime]:
    """(course, person) → end of access, for every open restore not yet run out (the sweep's term end)."""
    rows = session.execute(
        select(StudentRestore.course_id, StudentRestore.person_id, StudentRestore.access_until).where(
            StudentRestore.closed_at.is_(None), StudentRestore.access_until > now
        )
    )
    return {(c, p): until for c, p, until in rows}


def restored_end(session: Session, course_id: int, person_id: int, now: datetime) -> datetime | None:
    """One student's end of access under an open restore not yet run out (the agent's lease), or None."""
    return session.scalar(
        select(StudentRestore.access_until).where(
            StudentRestore.course_id == course_id,
            StudentRestore.person_id == person_id,
            StudentRestore.closed_at.is_(None),
            StudentRestore.access_until > now,
        )
    )


def student_view(session: Session, view: PolicyView | None, course: Course, person_id: int, now: datetime):  # type: ignore[no-untyped-def]
    """The launch check's view with the term moved to the restore's last day for a restored student."""
    until = restored_end(session, course.id, person_id, now) if view is not None else None
    if view is None or until is None:
        return view
    return replace(view, term_end=until.astimezone(ZoneInfo(course.time_zone)).date())


__all__ = [
    "RestoreError",
    "RestoreRequest",
    "access_end",
    "latest_archive",
    "parse_request",
    "restore_student",
    "restored_end",
    "restored_ends",
    "student_view",
]
