"""Roster sync state in Redis: progress for the "Sync now" page, the last result, and the differences link.

Kept out of PostgreSQL on purpose: a re-sync of an unchanged roster writes no rows, and losing this state
only costs one full sync.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

KEY = "cwc:lms:roster:{course_id}"
# States after which another outcome is still coming: the page keeps polling (retrying = RQ will run it again).
IN_PROGRESS = ("queued", "running", "retrying")
TTL_S = 90 * 24 * 3600


def _key(course_id: int) -> str:
    return KEY.format(course_id=course_id)


def read_state(redis: Redis, course_id: int) -> dict[str, Any]:
    """Everything known about the course's roster sync ({} if never synced)."""
    raw = redis.get(_key(course_id))
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def update_state(redis: Redis, course_id: int, **fields: Any) -> dict[str, Any]:
    """Merge fields into the state (one writer per course at a time: the job holds the course lock)."""
    state = read_state(redis, course_id)
    state.update(fields)
    redis.set(_key(course_id), json.dumps(state, default=str), ex=TTL_S)
    return state


def is_stale(redis: Redis, course_id: int, max_age_s: int, now: float | None = None) -> bool:
    """True when the roster never synced successfully or did so longer ago than `max_age_s`."""
    state = read_state(redis, course_id)
    if state.get("state") in IN_PROGRESS and (now or time.time()) - float(state.get("at", 0)) < 900:
        return False  # a sync is on its way
    last = state.get("synced_at")
    return last is None or (now or time.time()) - float(last) > max_age_s


def mark_queued(redis: Redis, course_id: int, *, full: bool) -> None:
    """Shown as "waiting for a worker" until the job starts."""
    update_state(redis, course_id, state="queued", at=time.time(), pages=0, members=0, full=full, message="")
