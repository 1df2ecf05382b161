"""Usage passback: per student hours, spend and sessions, where the instructor chose to put them.

Comment mode (the default once turned on): the line "Workspace usage: 3.2 h, $1.45" rides as the comment of the
student's score on each assignment whose workspace they opened (`workspace_folders`), and the grade is left as it
is. Column mode: a separate "Workspace usage" column, scored in hours, with a readable comment.

`usage_source` is the one place the figures come from; it reads the budget ledger's daily totals
(spend_daily: its spend, compute, storage and data sent out, and running seconds) and counts sessions as
starts into `running`.
Point it elsewhere and everything else stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import (
    CourseLms,
    CoursePolicy,
    Enrollment,
    EnrollmentStatus,
    GradeStatus,
    LineItemKind,
    LmsGrade,
    LmsLineItem,
    SpendDaily,
    StaffLevel,
    UsageMode,
    Workspace,
    WorkspaceEvent,
    WorkspaceFolder,
)
from classroom.workspaces.lifecycle import WorkspaceState
from lms_sync.grades import enter_grade
from lms_sync.line_items import USAGE_LABEL, USAGE_TAG

USAGE_POINTS = Decimal(100)  # the column's nominal maximum; the score is hours, the comment says everything


@dataclass(frozen=True)
class Usage:
    """One student's figures so far."""

    hours: Decimal = Decimal(0)
    spend: Decimal = Decimal(0)
    sessions: int = 0


def usage_source(session: Session, course_id: int) -> dict[int, Usage]:
    """Per person: running hours and spend from the ledger's daily totals, sessions from workspace starts."""
    totals = session.execute(
        select(
            SpendDaily.person_id,
            func.sum(SpendDaily.running_seconds),
            func.sum(SpendDaily.spent),
        )
        .where(SpendDaily.course_id == course_id)
        .group_by(SpendDaily.person_id)
    ).all()
    sessions = dict(
        session.execute(
            select(Workspace.person_id, func.count(WorkspaceEvent.id))
            .join(WorkspaceEvent, WorkspaceEvent.workspace_id == Workspace.id)
            .where(Workspace.course_id == course_id, WorkspaceEvent.to_state == WorkspaceState.RUNNING)
            .group_by(Workspace.person_id)
        ).all()
    )
    out = {
        pid: Usage(Decimal(secs or 0) / 3600, Decimal(spent or 0), int(sessions.get(pid, 0)))
        for pid, secs, spent in totals
    }
    for pid, count in sessions.items():
        out.setdefault(pid, Usage(sessions=int(count)))
    return out


def _money(value: Decimal) -> str:
    return "$" + str(value.quantize(Decimal("0.01"), ROUND_HALF_UP))


def usage_comment(usage: Usage, budget: Decimal | None) -> str:
    """'... 12.5 hours in 9 sessions; $4.18 spent of the $24.00 budget.' (pure; no date, so unchanged usage is
    not posted again)"""
    hours = usage.hours.quantize(Decimal("0.1"), ROUND_HALF_UP)
    sessions = f"{usage.sessions} session{'s' if usage.sessions != 1 else ''}"
    spend = f"{_money(usage.spend)} spent" + (f" of the {_money(budget)} budget" if budget is not None else "")
    return f"Cloud Workstation usage: {hours} hours in {sessions}; {spend}."


def usage_score(usage: Usage) -> Decimal:
    """The score posted: hours to two decimals."""
    return usage.hours.quantize(Decimal("0.01"), ROUND_HALF_UP)


def usage_line_item(session: Session, course_id: int) -> LmsLineItem:
    """The course's "Workspace usage" column (created in the LMS by the passback job on first use)."""
    item = session.scalar(
        select(LmsLineItem).where(LmsLineItem.course_id == course_id, LmsLineItem.kind == LineItemKind.USAGE)
    )
    if item is None:
        item = LmsLineItem(
            course_id=course_id,
            url="",
            label=USAGE_LABEL,
            score_maximum=USAGE_POINTS,
            tag=USAGE_TAG,
            kind=LineItemKind.USAGE,
            resource_link_id="",
        )
        session.add(item)
        session.flush()
    return item


def usage_note(usage: Usage) -> str:
    """'Workspace usage: 3.2 h, $1.45' (pure): the line posted as a comment on an assignment's score."""
    return f"Workspace usage: {usage.hours.quantize(Decimal('0.1'), ROUND_HALF_UP)} h, {_money(usage.spend)}"


def _active_students(session: Session, course_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Enrollment.person_id).where(
                Enrollment.course_id == course_id,
                Enrollment.level == StaffLevel.STUDENT,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
    )


def opened_assignments(session: Session, course_id: int) -> dict[int, list[LmsLineItem]]:
    """Per person: the assignment line items whose links they opened a workspace from (one item once)."""
    rows = session.execute(
        select(Workspace.person_id, LmsLineItem)
        .join(WorkspaceFolder, WorkspaceFolder.workspace_id == Workspace.id)
        .join(
            LmsLineItem,
            (LmsLineItem.course_id == Workspace.course_id)
            & (LmsLineItem.resource_link_id == WorkspaceFolder.link_key)
            & (LmsLineItem.kind == LineItemKind.ASSIGNMENT),
        )
        .where(Workspace.course_id == course_id, WorkspaceFolder.link_key != "")
        .distinct()
        .order_by(Workspace.person_id, LmsLineItem.id)
    ).all()
    out: dict[int, list[LmsLineItem]] = {}
    for person_id, item in rows:
        out.setdefault(person_id, []).append(item)
    return out


def note_usage(session: Session, *, item: LmsLineItem, person_id: int, note: str) -> bool:
    """Put the usage line on a student's score for an assignment, grade untouched; True when there is a post.

    A student nobody graded in the tool gets a row without a grade (posted as a comment only); a graded one
    keeps its score and comment, and the usage line is posted after them. An unchanged line writes nothing.
    """
    stmt = insert(LmsGrade).values(
        course_id=item.course_id,
        line_item_id=item.id,
        person_id=person_id,
        score_given=None,
        score_maximum=item.score_maximum,
        comment="",
        usage_comment=note,
        version=1,
        changed_at=utcnow(),
        entered_by=None,
        status=GradeStatus.PENDING,
        attempts=0,
        last_error="",
        posted_version=0,
    )
    written = session.scalar(  # claims may hold the row: the upsert waits for no job, it bumps the version
        stmt.on_conflict_do_update(
            constraint="uq_lms_grades_item_person",
            set_={
                "usage_comment": stmt.excluded.usage_comment,
                "version": LmsGrade.version + 1,
                "changed_at": stmt.excluded.changed_at,
                "status": GradeStatus.PENDING,
                "attempts": 0,
                "last_error": "",
            },
            where=LmsGrade.usage_comment != stmt.excluded.usage_comment,
        ).returning(LmsGrade.id)
    )
    return written is not None


def _stage_comments(session: Session, course_id: int) -> int:
    """Comment mode: the usage line on every opened assignment of every active student."""
    figures = usage_source(session, course_id)
    opened = opened_assignments(session, course_id)
    changed = 0
    for person_id in _active_students(session, course_id):
        note = usage_note(figures.get(person_id, Usage()))
        for item in opened.get(person_id, []):
            changed += note_usage(session, item=item, person_id=person_id, note=note)
    return changed


def _stage_column(session: Session, course_id: int) -> int:
    """Column mode: each active student's usage as a grade on the "Workspace usage" column."""
    policy = session.get(CoursePolicy, course_id)
    item = usage_line_item(session, course_id)
    figures = usage_source(session, course_id)
    changed = 0
    for person_id in _active_students(session, course_id):
        usage = figures.get(person_id, Usage())
        comment = usage_comment(usage, policy.budget_per_student if policy else None)
        if enter_grade(
            session,
            item=item,
            person_id=person_id,
            score=usage_score(usage),
            comment=comment,
            actor_person_id=None,
            audit=False,
        ):
            changed += 1
    return changed


def stage_usage(session: Session, course_id: int) -> int:
    """Stage each active student's usage as the course's mode says; returns how many scores will be posted."""
    lms = session.get(CourseLms, course_id)
    mode = UsageMode(lms.usage_mode) if lms is not None else UsageMode.COMMENT
    changed = _stage_comments(session, course_id) if mode is UsageMode.COMMENT else _stage_column(session, course_id)
    if changed:
        append_event(session, "usage.staged", course_id=course_id, details={"scores": changed, "mode": mode.value})
    return changed
