"""Integrity jobs: deadline snapshot requests (periodic), class similarity (on request, with progress), and
the retention purge (periodic). Thin, id-only, idempotent; sessions and the cloud port come from the job context
(one engine per worker process, not one per run)."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from classroom.db import session_scope, utcnow
from classroom.integrity.purge import expired_courses, purge_course
from classroom.integrity.snapshots import read_sources, request_due_snapshots, snapshots_of
from classroom.integrity.store import EvidenceStore
from classroom.jobs.context import current
from classroom.models import DeadlineSnapshot, SimilarityRun
from provisioning.aws_evidence import store_for
from provisioning.backend import CloudError

log = logging.getLogger(__name__)


def request_snapshots() -> int:
    """Every minute or so: want a snapshot of each assignment folder whose due time passed."""
    with session_scope(current().sessions) as session:
        return request_due_snapshots(session)


def run_similarity(run_id: int, store: EvidenceStore | None = None) -> int:
    """Compare every snapshot of the run's assignment; progress on the row; returns how many pairs."""
    ctx = current()
    factory = ctx.sessions
    with session_scope(factory) as session:
        run = session.get(SimilarityRun, run_id)
        if run is None or run.status in ("done", "failed"):
            return 0
        run.status = "running"
        course_id, link_key, threshold, starter = run.course_id, run.link_key, run.threshold, dict(run.starter)
        shots = [(str(s.person_id), s.s3_key, s.folder) for s in snapshots_of(session, course_id, link_key)]
        run.total, run.done = len(shots), 0
    store = store or store_for(ctx.backend)
    try:
        submissions = {pid: read_sources(store.get(key), folder) for pid, key, folder in shots if key}
    except CloudError as exc:
        _finish(factory, run_id, "failed", [], f"The snapshots could not be read: {exc}")
        raise

    def progress(done: int, total: int) -> None:
        with session_scope(factory) as s:
            s.execute(update(SimilarityRun).where(SimilarityRun.id == run_id).values(done=done, total=total))

    from classroom.integrity.similarity import find_pairs  # copydetect, numpy, matplotlib: loaded by this job only

    pairs = find_pairs(submissions, starter, threshold, _every(progress, max(1, len(submissions) // 20)))
    _finish(factory, run_id, "done", [p.as_json() for p in pairs], "")
    return len(pairs)


def _every(progress, step):  # type: ignore[no-untyped-def]
    def report(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            progress(done, total)

    return report


def _finish(factory, run_id: int, status: str, pairs: list[dict[str, object]], error: str) -> None:  # type: ignore[no-untyped-def]
    with session_scope(factory) as session:
        session.execute(
            update(SimilarityRun)
            .where(SimilarityRun.id == run_id)
            .values(status=status, pairs=pairs, error=error, finished_at=utcnow())
        )


def purge_expired_evidence(store: EvidenceStore | None = None) -> int:
    """Daily: purge each course whose retention ended (one transaction per course), then its snapshots."""
    ctx = current()
    factory = ctx.sessions
    with session_scope(factory) as session:
        courses = expired_courses(session, utcnow().date())
    purged = 0
    for course_id in courses:
        with session_scope(factory) as session:
            record, keys = purge_course(session, course_id)
            log.info(
                "purged course %s: %s audit events, %s activity events",
                course_id,
                record.audit_events,
                record.activity_events,
            )
        with session_scope(factory) as session:  # content-addressed: another course may hold the same bytes
            kept = set(session.scalars(select(DeadlineSnapshot.s3_key).where(DeadlineSnapshot.s3_key.in_(keys))))
        keys = [k for k in keys if k not in kept]
        if keys:
            store = store or store_for(ctx.backend)
            for key in keys:
                try:
                    store.delete(key)
                except CloudError:
                    log.warning("snapshot %s of purged course %s could not be deleted", key, course_id)
        purged += 1
    return purged
