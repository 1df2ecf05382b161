"""Opening a workspace from a course link: which workspace a link shares, its assignment folder, and Start.

By default a student has one workspace per course and template, reused by every assignment link (each link
adds its folder, `homework/<slug>`, which the workspace's agent creates); a course may instead give every
assignment link its own workspace. Nothing here runs on a GET: `open_workspace` is the explicit Start (POST).
Flush, never commit; the caller releases the returned jobs after its commit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.budget.policy import Decision
from classroom.db import utcnow
from classroom.models import Course, CoursePolicy, Workspace, WorkspaceFolder
from classroom.services.budgets import decide_launch, lock_for_start
from classroom.services.workspaces import Job, WorkspaceActionError, request_start, request_workspace
from classroom.workspaces.lifecycle import LIVE, WorkspaceState
from config.catalog import Catalog, WorkspaceTemplate
from config.prices import RegionPrices

S = WorkspaceState
UP = (S.REQUESTED, S.PROVISIONING, S.STARTING, S.RUNNING)
FOLDER_ROOT = "homework"


@dataclass(frozen=True)
class Link:
    """The LTI resource link a student came from; `assignment` is False for the course's own link."""

    key: str
    title: str
    template_id: str | None = None
    due_at: datetime | None = None
    assignment: bool = False


@dataclass
class Opened:
    """The outcome of a Start: the workspace (None if refused), the refusal, and the jobs to release."""

    ws: Workspace | None
    decision: Decision | None = None
    jobs: list[Job] = field(default_factory=list)


def workspace_key(scope: str, link_key: str, template_id: str) -> str:
    """What workspaces are shared by: the template (one per student and template) or the assignment link."""
    return link_key[:255] if scope == "assignment" else f"template:{template_id}"


def folder_for(title: str) -> str:
    """`homework/<slug>` for an assignment title: lower-case ASCII letters, digits and dashes, at most 60."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    return f"{FOLDER_ROOT}/{slug or 'assignment'}"


def scope_of(session: Session, course_id: int) -> str:
    """The course's workspace scope (per student when the course has no policy yet)."""
    return session.scalar(select(CoursePolicy.workspace_scope).where(CoursePolicy.course_id == course_id)) or "student"


def find_workspace(
    session: Session, course_id: int, person_id: int, key: str, *, lock: bool = False
) -> Workspace | None:
    """The person's live workspace with this key (locked for the Start when asked)."""
    query = select(Workspace).where(
        Workspace.course_id == course_id,
        Workspace.person_id == person_id,
        Workspace.link_key == key,
        Workspace.state.in_(LIVE),
    )
    return session.scalar(query.with_for_update() if lock else query)


def prepare_folder(session: Session, ws: Workspace, link: Link) -> None:
    """Record the assignment's folder for the workspace's agent to create (once per link; the due date kept fresh)."""
    if not link.assignment:
        return
    stmt = insert(WorkspaceFolder).values(
        workspace_id=ws.id,
        link_key=link.key[:255],
        title=link.title[:255],
        folder=folder_for(link.title),
        due_at=link.due_at,
        created_at=utcnow(),
    )
    session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_workspace_folders_ws_link",
            set_={"due_at": stmt.excluded.due_at, "title": stmt.excluded.title},
            where=WorkspaceFolder.due_at.is_distinct_from(stmt.excluded.due_at)
            | (WorkspaceFolder.title != stmt.excluded.title),
        )
    )


def folders_of(session: Session, workspace_id: int) -> list[WorkspaceFolder]:
    """The assignment folders of a workspace, in the order they were opened."""
    return list(
        session.scalars(
            select(WorkspaceFolder).where(WorkspaceFolder.workspace_id == workspace_id).order_by(WorkspaceFolder.id)
        )
    )


def open_workspace(  # noqa: PLR0913
    session: Session,
    course: Course,
    person_id: int,
    link: Link,
    template: WorkspaceTemplate,
    *,
    catalog: Catalog,
    prices: RegionPrices,
    region: str,
    now: datetime | None = None,
) -> Opened:
    """The student's Start: reuse the link's workspace (starting it if stopped) or request one, policy first.

    Idempotent under bursts: the live workspace is locked, a new one is one row per key whatever races.
    """
    # The course's and the student's locks first (decide_launch takes the student's again: advisory locks nest in
    # one transaction), so a burst of Starts finds the workspace the first one made instead of counting it against
    # max_concurrent, and two students' Starts are judged one after the other against the course's remainder.
    lock_for_start(session, course.id, person_id)
    scope = scope_of(session, course.id)
    key = workspace_key(scope, link.key, template.id)
    ws = find_workspace(session, course.id, person_id, key, lock=True)
    if ws is not None and ws.retire_after is not None:
        raise WorkspaceActionError("This workspace is being archived and removed; it cannot start again.")
    if ws is not None and ws.state in UP:
        prepare_folder(session, ws, link)
        return Opened(ws)
    decision = decide_launch(
        session,
        course,
        person_id,
        ws.template_id if ws else template.id,
        catalog=catalog,
        prices=prices,
        now=now,
        starting=ws is not None,
    )
    if not decision.allowed:
        return Opened(None, decision)
    if ws is None:
        ws, jobs = request_workspace(
            session,
            course_id=course.id,
            person_id=person_id,
            link_key=key,
            link_title=link.title if scope == "assignment" else template.name,
            template=template,
            region=region,
        )
    else:
        jobs = request_start(session, ws, actor_person_id=person_id, actor="student")
    prepare_folder(session, ws, link)
    return Opened(ws, None, jobs)
