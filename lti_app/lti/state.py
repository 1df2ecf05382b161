"""OIDC login state kept in Redis, one record per login, consumed exactly once by the launch.

The record binds the login to one browser through a secret (`binding`) that only that browser holds:
in a cookie, or in the platform's storage (lti.put_data) when third-party cookies are blocked. Redis keeps
only the binding's SHA-256, so reading Redis is not enough to finish someone else's login.
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any

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


def digest(value: str) -> str:
    """SHA-256 hex of a secret, as stored and compared in Redis."""
    return hashlib.sha256(value.encode()).hexdigest()


class Outcome(enum.Enum):
    """What taking a login state found."""

    TAKEN = "taken"  # the record was this browser's; it is deleted now
    MISSING = "missing"  # expired, never issued, or already used
    OTHER_BROWSER = "other-browser"  # the binding does not match; the record stays for its own browser
    NONCE_USED = "nonce-used"  # the record was taken, but the token's nonce had been used before


# One round trip, atomic: check the binding digest, delete the record, mark the token's nonce as used.
TAKE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
if cjson.decode(raw)['binding_sha256'] ~= ARGV[1] then return {'other-browser'} end
redis.call('DEL', KEYS[1])
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[2])) then return {'nonce-used', raw} end
return {'taken', raw}
"""


# The same step for a launch that came back without its browser binding (no cookie, no platform storage): the
# record is taken only by an id_token carrying the login's own nonce, and its signature is checked next. The
# launch is then parked for a new window to claim (lti_app.lti.parked), never signed in where it arrived.
TAKE_UNBOUND = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
if cjson.decode(raw)['nonce'] ~= ARGV[1] then return {'other-browser'} end
redis.call('DEL', KEYS[1])
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[2])) then return {'nonce-used', raw} end
return {'taken', raw}
"""


def _from_record(raw: bytes | str) -> LoginState:
    record: dict[str, Any] = json.loads(raw)
    record.pop("binding_sha256", None)
    record.pop("binding", None)  # a record written before the digest (it expires within the state TTL)
    return LoginState(binding="", **record)


class LoginStateStore:
    """Save, read and consume login states in Redis."""

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis, self.ttl_s = redis, ttl_s
        self._take = redis.register_script(TAKE)
        self._take_unbound = redis.register_script(TAKE_UNBOUND)

    def save(self, login: LoginState) -> None:
        """Store the record until it is used or expires (with the binding's digest, not the binding)."""
        record = asdict(login)
        record["binding_sha256"] = digest(record.pop("binding"))
        self.redis.set(PREFIX + login.state, json.dumps(record), ex=self.ttl_s)

    def peek(self, state: str) -> LoginState | None:
        """Read the record without using it up (its `binding` is left empty)."""
        raw = self.redis.get(PREFIX + state) if state else None
        return _from_record(raw) if raw else None

    def take(self, state: str, binding: str, nonce: str, nonce_ttl_s: int) -> tuple[Outcome, LoginState | None]:
        """Use the login up if `binding` is its browser's, and mark the id_token's nonce used, atomically.

        The returned state's `binding` is the one given (it matched). A wrong binding uses nothing up, so a
        stranger who learns a state cannot spoil the real browser's login.
        """
        if not state or not binding:
            return Outcome.MISSING, None
        keys = [PREFIX + state, NONCE_PREFIX + digest(nonce)]
        found = self._take(keys=keys, args=[digest(binding), nonce_ttl_s])
        outcome = Outcome(found[0].decode() if isinstance(found[0], bytes) else found[0])
        if len(found) < 2:
            return outcome, None
        return outcome, replace(_from_record(found[1]), binding=binding)

    def take_unbound(self, state: str, nonce: str, nonce_ttl_s: int) -> tuple[Outcome, LoginState | None]:
        """Use the login up for an id_token that carries its nonce, without a browser binding (to park it)."""
        if not state or not nonce:
            return Outcome.MISSING, None
        keys = [PREFIX + state, NONCE_PREFIX + digest(nonce)]
        found = self._take_unbound(keys=keys, args=[nonce, nonce_ttl_s])
        outcome = Outcome(found[0].decode() if isinstance(found[0], bytes) else found[0])
        if len(found) < 2:
            return outcome, None
        return outcome, _from_record(found[1])
