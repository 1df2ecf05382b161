"""Platform public keys: cached per key-set URL in Redis, refetched once (single-flight) on an unknown kid.

Each worker also keeps the keys it has parsed for a short while (LOCAL_TTL_S, never longer than the Redis
entry lives), so a launch reads neither Redis nor a PEM for a key it has already used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

import jwt
import requests
from redis import Redis

log = logging.getLogger(__name__)

FETCH_COUNTER = "cwc:jwks:fetches"
LOCAL_TTL_S = 300.0


class KeySetError(Exception):
    """The platform's key set could not be fetched or has no usable key."""


class PlatformKeyCache:
    """Find a platform's public JWK by kid without downloading the key set on every launch."""

    def __init__(
        self,
        redis: Redis,
        ttl_s: int,
        *,
        http: requests.Session | None = None,
        refetch_interval_s: int = 10,
        timeout_s: float = 5.0,
    ) -> None:
        self.redis, self.ttl_s = redis, ttl_s
        self.http = http or requests.Session()
        self.refetch_interval_s, self.timeout_s = refetch_interval_s, timeout_s
        self._parsed: dict[tuple[str, str], tuple[float, Any]] = {}  # (url, kid) -> (parsed at, key object)
        self._lock = threading.Lock()

    @staticmethod
    def _key(url: str) -> str:
        return "cwc:jwks:" + hashlib.sha256(url.encode()).hexdigest()[:32]

    def _cached(self, url: str) -> dict[str, Any] | None:
        raw = self.redis.get(self._key(url))
        return json.loads(raw) if raw else None

    def _fetch(self, url: str) -> dict[str, Any]:
        try:
            resp = self.http.get(url, timeout=self.timeout_s, headers={"Accept": "application/json"})
            resp.raise_for_status()
            keyset = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise KeySetError(f"Could not fetch the platform's public keys from {url}: {type(exc).__name__}") from exc
        if not isinstance(keyset, dict) or not isinstance(keyset.get("keys"), list):
            raise KeySetError(f"The platform's key set at {url} is not a JWKS document.")
        self.redis.set(self._key(url), json.dumps(keyset), ex=self.ttl_s)
        self.redis.incr(FETCH_COUNTER)
        log.info("fetched platform key set", extra={"fields": {"url": url, "keys": len(keyset["keys"])}})
        return keyset

    def _refresh(self, url: str, *, forced: bool) -> dict[str, Any] | None:
        """Fetch once across all workers; the others wait for that download and read its result.

        `forced` (an unknown kid with a key set in the cache) fetches at most once per refetch interval, so
        tokens naming keys nobody publishes cannot make the tool download the key set on every request.
        """
        base = self._key(url)
        if forced and self.redis.exists(base + ":recent"):
            self._wait_for_download(base)  # a download started by another request may still be running
            return self._cached(url)
        if self.redis.set(base + ":lock", 1, nx=True, ex=int(self.timeout_s) + 2):
            try:
                return self._fetch(url)
            finally:
                if forced:
                    self.redis.set(base + ":recent", 1, ex=self.refetch_interval_s)
                self.redis.delete(base + ":lock")
        self._wait_for_download(base)
        return self._cached(url)

    def _wait_for_download(self, base: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while self.redis.exists(base + ":lock") and time.monotonic() < deadline:
            time.sleep(0.02)

    @staticmethod
    def _find(keyset: dict[str, Any] | None, kid: str) -> dict[str, Any] | None:
        for key in (keyset or {}).get("keys", []):
            if isinstance(key, dict) and key.get("kid") == kid:
                return key
        return None

    def get(self, url: str, kid: str) -> dict[str, Any]:
        """Return the JWK with this kid, fetching the key set at most once per rotation."""
        keyset = self._cached(url)
        key = self._find(keyset, kid)
        if key is None:
            keyset = self._refresh(url, forced=keyset is not None)
            key = self._find(keyset, kid)
        if key is None:
            raise KeySetError("The launch was signed with a key the platform does not publish.")
        return key

    def public_key(self, url: str, kid: str) -> Any:
        """The key object for this kid, parsed once per worker and kept up to LOCAL_TTL_S (or the cache TTL)."""
        hit = self._parsed.get((url, kid))
        if hit is not None and time.monotonic() - hit[0] < min(LOCAL_TTL_S, self.ttl_s):
            return hit[1]
        try:
            key = jwt.PyJWK(self.get(url, kid)).key
        except jwt.PyJWKError as exc:
            raise KeySetError(f"The platform's key {kid} can not be used: {exc}.") from exc
        with self._lock:
            self._parsed[(url, kid)] = (time.monotonic(), key)
        return key
