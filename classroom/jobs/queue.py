"""All RQ plumbing in one place: queues, JSON serializer, explicit connections, deterministic job ids."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"
QUEUE_NAMES = (DEFAULT_QUEUE,)
DEFAULT_RETRY = Retry(max=3, interval=[10, 60, 300])


def get_queue(connection: Redis, name: str = DEFAULT_QUEUE) -> Queue:
    """Return a queue that serializes jobs as JSON (never pickle)."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue(
    connection: Redis,
    func: Callable[..., Any] | str,
    *args: int | str,
    job_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    retry: Retry | None = DEFAULT_RETRY,
    **options: Any,
) -> Job | None:
    """Enqueue a job that takes ids only; a job_id already queued or running is not enqueued again."""
    q = get_queue(connection, queue)
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


def worker_count(connection: Redis) -> int:
    """How many workers are registered right now (health endpoint)."""
    return len(Worker.all(connection=connection))
