"""LTI service tokens cached in Redis per (issuer, client_id, scopes) until they expire (shared by all workers)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from redis import Redis

PREFIX = "cwc:lms:token:"
MARGIN_S = 30  # stop using a token this long before the platform says it expires
_DROP_IF_SAME = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def token_key(issuer: str, client_id: str, scopes: Iterable[str]) -> str:
    """The cache key of one (issuer, client_id, scopes) triple."""
    raw = "\n".join([issuer, client_id, *sorted(set(scopes))])
    return PREFIX + hashlib.sha256(raw.encode()).hexdigest()


class RedisTokenCache:
    """Get, put and drop service tokens."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def get(self, key: str) -> str | None:
        """The cached token, if it is still good."""
        value = self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else value

    def get_with_ttl(self, key: str) -> tuple[str | None, float]:
        """The cached token and its remaining seconds (one round trip)."""
        pipe = self.redis.pipeline()
        pipe.get(key)
        pipe.ttl(key)
        value, ttl = pipe.execute()
        token = value.decode() if isinstance(value, bytes) else value
        return token, float(ttl) if token and ttl and ttl > 0 else 0.0

    def put(self, key: str, token: str, expires_in: float) -> None:
        """Keep a token until shortly before it expires (tokens without a lifetime are not cached)."""
        ttl = int(float(expires_in or 0)) - MARGIN_S
        if ttl > 0:
            self.redis.set(key, token, ex=ttl)

    def drop(self, key: str, token: str) -> None:
        """Forget a token the platform refused, unless another worker already replaced it."""
        self.redis.eval(_DROP_IF_SAME, 1, key, token)
