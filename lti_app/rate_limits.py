"""One rate limiter for the app's forms and routes, in the app's Redis (the `limits` library, the engine
flask-limiter runs on, used directly so each limit applies to the one route that needs it and no app-wide extension
is installed). Callers choose the item ("20/minute") and the key (a person, an address, a hashed code)."""

from __future__ import annotations

from flask import current_app
from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from lti_app.runtime import runtime

_KEY = "cwc_rate_limiter"


def limiter() -> FixedWindowRateLimiter:
    """The app's limiter over its own Redis connection pool (the embedded Redis and real Redis alike)."""
    found = current_app.extensions.get(_KEY)
    if found is None:
        found = FixedWindowRateLimiter(RedisStorage("redis://", connection_pool=runtime().redis.connection_pool))
        current_app.extensions[_KEY] = found
    return found


def allow(item: RateLimitItem, *key: str) -> bool:
    """Count one hit against `key`; False once it is past `item`."""
    return limiter().hit(item, *key)
