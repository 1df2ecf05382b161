"""Is enforcement running? The last successful sweep's time (in Redis) and the enforcement workers alive.

`enforcement_problems` is pure; the health endpoint and the staff pages call `enforcement_status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis

from classroom.jobs.queue import ENFORCEMENT_QUEUE, worker_count

LAST_SWEEP_KEY = "cwc:enforcement:last-sweep"
MAX_SWEEP_AGE = timedelta(minutes=3)


@dataclass(frozen=True)
class EnforcementStatus:
    """What health and the pages say about enforcement."""

    last_sweep: datetime | None
    workers: int
    problems: tuple[str, ...]

    @property
    def delayed(self) -> bool:
        return bool(self.problems)


def record_sweep(redis: Redis, at: datetime) -> None:
    """Remember a successful sweep (called after its commit)."""
    redis.set(LAST_SWEEP_KEY, at.isoformat())


def last_sweep(redis: Redis) -> datetime | None:
    """When the last successful sweep committed, or None if none is known."""
    raw = redis.get(LAST_SWEEP_KEY)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None


def enforcement_problems(now: datetime, last: datetime | None, workers: int) -> tuple[str, ...]:
    """Why enforcement is delayed (empty when it is not): no enforcement worker, no sweep for 3 minutes."""
    problems = []
    if workers < 1:
        problems.append("no enforcement worker is running")
    if last is None:
        problems.append("no enforcement sweep has run yet")
    elif now - last > MAX_SWEEP_AGE:
        problems.append(f"the last enforcement sweep was {int((now - last).total_seconds() // 60)} minutes ago")
    return tuple(problems)


def enforcement_status(redis: Redis, now: datetime) -> EnforcementStatus:
    """Read the last sweep and the workers listening on the enforcement queue."""
    last = last_sweep(redis)
    workers = worker_count(redis, ENFORCEMENT_QUEUE)
    return EnforcementStatus(last, workers, enforcement_problems(now, last, workers))
