"""LMS jobs run by the RQ worker: ID-only, idempotent, each with its own session; side effects after commit."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import LockError
from sqlalchemy import select

from classroom.db import utcnow
from classroom.jobs.queue import enqueue
from classroom.models import CourseLms, GradeStatus, LmsGrade
from lms_sync import progress
from lms_sync.context import context, lti_services
from lms_sync.dates import refresh_course_dates
from lms_sync.http import LmsError
from lms_sync.line_items import create_missing
from lms_sync.passback import release_stale_claims, run_passback
from lms_sync.roster_sync import SyncError, sync_roster
from lms_sync.usage import stage_usage
from lms_sync.welcome_send import welcome_started_terms
from lms_sync.workspaces_hook import release_stops

log = logging.getLogger(__name__)
ROSTER_LOCK = "cwc:lms:roster-lock:{}"


def roster_job_id(course_id: int) -> str:
    return f"lms-roster-{course_id}"


def passback_job_id(course_id: int) -> str:
    return f"lms-passback-{course_id}"


def dates_job_id(course_id: int) -> str:
    return f"lms-dates-{course_id}"


def enqueue_roster_sync(redis: Any, course_id: int, *, full: bool, actor_person_id: int | None = None) -> None:
    """Queue one roster sync per course (a second request while one waits or runs is the same job)."""
    progress.mark_queued(redis, course_id, full=full)
    enqueue(
        redis,
        "lms_sync.jobs.sync_course_roster",
        course_id,
        int(full),
        actor_person_id or 0,
        job_id=roster_job_id(course_id),
    )


def enqueue_passback(redis: Any, course_id: int) -> None:
    """Queue the course's passback (collapses with one already queued)."""
    enqueue(redis, "lms_sync.jobs.passback_course", course_id, job_id=passback_job_id(course_id))


def enqueue_dates(redis: Any, course_id: int) -> None:
    """Queue a due-date refresh."""
    enqueue(redis, "lms_sync.jobs.refresh_due_dates", course_id, job_id=dates_job_id(course_id))


def sync_course_roster(course_id: int, full: int = 0, actor_person_id: int = 0) -> dict[str, Any]:
    """Sync one course's roster (differences when known, unless `full`); one at a time per course."""
    ctx = context()
    lock = ctx.redis.lock(ROSTER_LOCK.format(course_id), timeout=1800, blocking=False)
    if not lock.acquire():
        return {"skipped": "another roster sync of this course is running"}
    try:
        state = progress.read_state(ctx.redis, course_id)
        progress.update_state(ctx.redis, course_id, state="running", at=time.time(), pages=0, members=0, message="")
        with ctx.sessions() as session:
            try:
                result = sync_roster(
                    session,
                    course_id,
                    lms=lti_services(session, ctx, course_id),
                    full=bool(full) or not state.get("differences_url"),
                    differences_url=state.get("differences_url"),
                    on_page=lambda p, m: progress.update_state(ctx.redis, course_id, pages=p, members=m),
                    actor_person_id=actor_person_id or None,
                )
                session.commit()
            except (SyncError, LmsError) as exc:
                session.rollback()
                message = getattr(exc, "message", None) or str(exc)
                progress.update_state(ctx.redis, course_id, state="failed", at=time.time(), message=message)
                log.warning("roster sync of course %s failed: %s", course_id, message)
                return {"error": message}
        release_stops(ctx.redis, result.jobs)
        progress.update_state(
            ctx.redis,
            course_id,
            state="done",
            at=time.time(),
            synced_at=time.time(),
            pages=result.pages,
            members=result.members,
            counts=result.counts,
            full=result.full,
            differences_url=result.differences_url or "",
        )
        enqueue_dates(ctx.redis, course_id)
        return {"pages": result.pages, "members": result.members, **result.counts}
    except Exception:
        _mark_unexpected_failure(ctx.redis, course_id)
        raise
    finally:
        try:
            lock.release()
        except LockError:  # expired (a sync longer than its timeout) or Redis lost it: nothing left to release
            log.warning("roster sync lock of course %s was gone before the sync ended", course_id)


def _will_be_retried() -> bool:
    """True when RQ will run the current job again after this failure (it decrements retries_left after)."""
    from rq import get_current_job

    job = get_current_job()
    return bool(job is not None and job.retries_left)


def _mark_unexpected_failure(redis: Any, course_id: int) -> None:
    """Record the attempt's failure; `retrying` keeps the page polling until the retry's own outcome."""
    if _will_be_retried():
        progress.update_state(
            redis,
            course_id,
            state="retrying",
            at=time.time(),
            message="The sync stopped on an unexpected error; it will be tried again shortly.",
        )
    else:
        progress.update_state(
            redis,
            course_id,
            state="failed",
            at=time.time(),
            message="The sync stopped on an unexpected error. Use Sync now to try again.",
        )


def refresh_due_dates(course_id: int) -> dict[str, Any]:
    """Refresh a course's line items and due dates from AGS and Canvas REST."""
    ctx = context()
    with ctx.sessions() as session:
        result = refresh_course_dates(session, ctx, course_id)
        session.commit()
    progress.update_state(ctx.redis, course_id, dates_errors=result.errors, dates_at=time.time())
    return {"line_items": result.line_items, "canvas": result.canvas, "errors": result.errors}


def passback_course(course_id: int) -> dict[str, Any]:
    """Post a course's pending grades to the LMS gradebook (AGS)."""
    ctx = context()
    with ctx.sessions() as session:
        lms = lti_services(session, ctx, course_id)
        row = session.get(CourseLms, course_id)
        errors = create_missing(session, course_id, lms, row.ags_lineitems_url if row else "")
        session.commit()
    report = run_passback(
        ctx.sessions, lms, course_id, concurrency=ctx.settings.passback_concurrency, policy=ctx.policy
    )
    if errors:
        log.warning("passback of course %s: %s", course_id, "; ".join(errors))
    return {
        "posted": report.posted,
        "failed": report.failed,
        "rejected": report.rejected,
        "retries": report.retries,
        "line_item_errors": errors,
    }


def sync_all_rosters() -> int:
    """Nightly: queue a roster sync for every course with a roster service; returns how many."""
    ctx = context()
    with ctx.sessions() as session:
        courses = session.scalars(select(CourseLms.course_id).where(CourseLms.nrps_url != "")).all()
    for course_id in courses:
        enqueue_roster_sync(ctx.redis, course_id, full=True)
    return len(courses)


def welcome_at_term_start() -> int:
    """Hourly: welcome the students of courses whose term has started and who were not welcomed yet."""
    ctx = context()
    with ctx.sessions() as session:
        welcomed = welcome_started_terms(session, utcnow().date())
        session.commit()
    return welcomed


def passback_sweep() -> int:
    """Every minute: release claims of dead jobs and queue passback where grades wait; returns courses queued."""
    ctx = context()
    with ctx.sessions() as session:
        released = release_stale_claims(session)
        courses = session.scalars(
            select(LmsGrade.course_id).where(LmsGrade.status == GradeStatus.PENDING).distinct()
        ).all()
        session.commit()
    if released:
        log.warning("released %s grade claims of passback jobs that stopped", released)
    for course_id in courses:
        enqueue_passback(ctx.redis, course_id)
    return len(courses)


def post_usage_nightly() -> int:
    """Nightly: stage usage grades for courses that turned usage passback on, then queue their passback."""
    ctx = context()
    queued = []
    with ctx.sessions() as session:
        courses = session.scalars(select(CourseLms.course_id).where(CourseLms.usage_passback.is_(True))).all()
        for course_id in courses:
            if stage_usage(session, course_id):
                queued.append(course_id)
        session.commit()
    for course_id in queued:
        enqueue_passback(ctx.redis, course_id)
    log.info("usage staged for %s course(s) at %s", len(queued), utcnow().isoformat())
    return len(queued)
