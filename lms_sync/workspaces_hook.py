"""The one seam to workspaces: stop a dropped student's running workspaces (their data is kept)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.jobs.queue import enqueue
from classroom.models import Workspace
from classroom.workspaces.lifecycle import WorkspaceState

RUNNING_LIKE = (
    WorkspaceState.RUNNING,
    WorkspaceState.STARTING,
    WorkspaceState.PROVISIONING,
    WorkspaceState.REQUESTED,
)


@dataclass(frozen=True)
class StopJob:
    """A workspace job to enqueue after the commit (mirrors classroom.services.workspaces.Job)."""

    func: str
    workspace_id: int
    job_id: str


def stop_dropped_workspaces(
    session: Session, course_id: int, person_ids: Sequence[int], *, reason: str
) -> list[StopJob]:
    """Ask provisioning to stop the running workspaces of people dropped from a course (flushes)."""
    if not person_ids:
        return []
    with_live = session.scalars(
        select(Workspace.person_id)
        .where(Workspace.course_id == course_id, Workspace.person_id.in_(person_ids), Workspace.state.in_(RUNNING_LIKE))
        .distinct()
    ).all()
    if not with_live:
        return []
    from classroom.services.workspaces import stop_workspaces_for_person  # the workspace service owns state changes

    jobs: list[StopJob] = []
    for person_id in with_live:
        for job in stop_workspaces_for_person(session, course_id, person_id, reason=reason, actor="roster-sync"):
            jobs.append(StopJob(job.func, job.workspace_id, job.job_id))
    return jobs


def release_stops(redis: Redis, jobs: Sequence[StopJob]) -> None:
    """Enqueue the stops (call after the commit that dropped the students)."""
    for job in jobs:
        enqueue(redis, job.func, job.workspace_id, job_id=job.job_id)
