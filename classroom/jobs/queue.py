"""All RQ plumbing in one place: queues, JSON serializer, explicit connections, deterministic job ids."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from classroom.jobs.names import (
    CLOSE_TERMS,
    CLOSE_WORKSHOPS,
    METER_AND_ENFORCE,
    RECONCILE_WORKSPACES,
    STOP_WORKSPACE,
)

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"
# Money safety first: the sweep, every stop and the term-end closing run on their own queue, worked by its own
# worker process, so a slow job in the default queue (passback sleeping on a Retry-After) cannot delay them.
ENFORCEMENT_QUEUE = "enforcement"
QUEUE_NAMES = (ENFORCEMENT_QUEUE, DEFAULT_QUEUE)  # in priority order
ENFORCEMENT_JOBS = frozenset({METER_AND_ENFORCE, STOP_WORKSPACE, RECONCILE_WORKSPACES, CLOSE_TERMS, CLOSE_WORKSHOPS})
DEFAULT_RETRY = Retry(max=3, interval=[10, 60, 300])


def queue_for(func: Callable[..., Any] | str) -> str:
    """The queue a job belongs on: enforcement jobs on theirs, everything else on the default queue."""
    name = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    return ENFORCEMENT_QUEUE if name in ENFORCEMENT_JOBS else DEFAULT_QUEUE


def get_queue(connection: Redis, name: str = DEFAULT_QUEUE) -> Queue:
    """Return a queue that serializes jobs as JSON (never pickle)."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue(
    connection: Redis,
    func: Callable[..., Any] | str,
    *args: int | str,
    job_id: str | None = None,
    queue: str | None = None,
    retry: Retry | None = DEFAULT_RETRY,
    **options: Any,
) -> Job | None:
    """Enqueue a job that takes ids only (on queue_for(func) unless told); a job_id already queued or running
    is not enqueued again."""
    q = get_queue(connection, queue or queue_for(func))
    if job_id is not None:
        existing = q.fetch_job(job_id)
        if existing is not None and existing.get_status(refresh=True) in ("queued", "started", "deferred", "scheduled"):
            return existing
    return q.enqueue(func, *args, job_id=job_id, retry=retry, **options)


def make_worker(connection: Redis, queues: tuple[str, ...] = QUEUE_NAMES, *, simple: bool = False) -> Worker:
    """Build a worker on our queues; `simple` runs jobs in-process (tests, burst runs)."""
    from rq import SimpleWorker

    cls = SimpleWorker if simple else Worker
    return cls([get_queue(connection, q) for q in queues], connection=connection, serializer=JSONSerializer)


def worker_count(connection: Redis, queue: str | None = None) -> int:
    """How many workers are registered right now (on `queue`, when given): the health endpoint."""
    workers = Worker.all(connection=connection)
    if queue is None:
        return len(workers)
    return sum(1 for w in workers if queue in w.queue_names())
