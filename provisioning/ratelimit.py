"""A client-side rate limit on mutating cloud calls, shared by all workers through Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis


class RedisRateLimiter:
    """At most `per_second` acquisitions per wall-clock second across every process."""

    def __init__(
        self,
        redis: Redis,
        per_second: int,
        key: str = "cwc:aws:mutating",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis, self.per_second, self.key = redis, max(1, per_second), key
        self.sleep, self.clock = sleep, clock

    def acquire(self) -> float:
        """Block until a slot is free; return how long we waited (seconds)."""
        waited = 0.0
        while True:
            now = self.clock()
            window = int(now)
            slot = f"{self.key}:{window}"
            count = self.redis.incr(slot)
            if count == 1:
                self.redis.expire(slot, 2)
            if count <= self.per_second:
                return waited
            pause = (window + 1) - now + 0.001
            self.sleep(pause)
            waited += pause
