"""OIDC login state kept in Redis, one record per login, consumed exactly once by the launch.

The record binds the login to one browser through a secret (`binding`) that only that browser holds:
in a cookie, or in the platform's storage (lti.put_data) when third-party cookies are blocked.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field

from redis import Redis

PREFIX = "cwc:lti:state:"
NONCE_PREFIX = "cwc:lti:nonce-used:"


@dataclass(frozen=True)
class LoginState:
    """What the login promised: which registration, which nonce, which browser."""

    state: str
    nonce: str
    binding: str
    platform_id: int
    issuer: str
    client_id: str
    login_params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, platform_id: int, issuer: str, client_id: str, login_params: dict[str, str]) -> LoginState:
        """A fresh login with random state, nonce and browser binding."""
        return cls(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            platform_id,
            issuer,
            client_id,
            login_params,
        )


def cookie_name(state: str) -> str:
    """Per-login cookie name, so parallel logins in several tabs do not overwrite each other."""
    return "cwc_lti_" + hashlib.sha256(state.encode()).hexdigest()[:20]


def storage_key(state: str) -> str:
    """Key under which the binding is kept in platform storage."""
    return "cwc_state_" + hashlib.sha256(state.encode()).hexdigest()[:20]


class LoginStateStore:
    """Save, read and consume login states in Redis."""

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis, self.ttl_s = redis, ttl_s

    def save(self, login: LoginState) -> None:
        """Store the record until it is used or expires."""
        self.redis.set(PREFIX + login.state, json.dumps(asdict(login)), ex=self.ttl_s)

    def peek(self, state: str) -> LoginState | None:
        """Read the record without using it up."""
        raw = self.redis.get(PREFIX + state) if state else None
        return LoginState(**json.loads(raw)) if raw else None

    def consume(self, state: str) -> LoginState | None:
        """Atomically read and delete: a second launch with the same state finds nothing."""
        raw = self.redis.getdel(PREFIX + state) if state else None
        return LoginState(**json.loads(raw)) if raw else None

    def use_nonce(self, nonce: str, ttl_s: int) -> bool:
        """Mark a nonce used; False if it was used before (replay)."""
        return bool(self.redis.set(NONCE_PREFIX + hashlib.sha256(nonce.encode()).hexdigest(), 1, nx=True, ex=ttl_s))
