"""Parked launches: a verified launch that came back without its browser binding waits here for a new window.

Moodle deletes its `lti_message_hint` on first use, so the new window cannot replay the login. Instead the tool
finishes the launch it already verified: it parks it under a one-time secret (Redis keeps only its SHA-256) for
PARK_TTL_S; the new window binds it to a fresh first-party cookie (the first window to open the link wins) and
claims it with that cookie, which deletes it. Nothing is written to the database, and no launch data is
saved, before the claim.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from lti_app.lti.state import digest

PREFIX = "cwc:lti:parked:"
PARK_TTL_S = 120
COOKIE = "cwc_resume"

# Bind the parked launch to the window's cookie: the first cookie wins, the same cookie may bind again (reload).
BIND = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local record = cjson.decode(raw)
if record['bound'] == '' then
  record['bound'] = ARGV[1]
  redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
  return cjson.encode(record)
end
if record['bound'] ~= ARGV[1] then return false end
return raw
"""
# Claim it: only with the cookie it was bound to; claiming deletes it (one use).
CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
if cjson.decode(raw)['bound'] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return raw
"""


@dataclass(frozen=True)
class ParkedLaunch:
    """What the claim needs to finish the launch: the saved launch data's id and the launch's target."""

    launch_id: str
    platform_id: int
    deployment_pk: int
    deployment_id: str
    person_name: str
    course_title: str
    body: dict[str, Any]  # the verified id_token's claims: saved as launch data only when claimed
    bound: str = ""  # digest of the claiming window's cookie


class ParkedLaunches:
    """Park, bind and claim launches in Redis."""

    def __init__(self, redis: Redis, ttl_s: int = PARK_TTL_S) -> None:
        self.redis, self.ttl_s = redis, ttl_s
        self._bind = redis.register_script(BIND)
        self._claim = redis.register_script(CLAIM)

    def park(self, launch: ParkedLaunch) -> str:
        """Keep the launch for a new window; returns the one-time secret that names it."""
        secret = secrets.token_urlsafe(32)
        self.redis.set(PREFIX + digest(secret), json.dumps(asdict(launch)), ex=self.ttl_s)
        return secret

    def bind(self, secret: str, cookie: str) -> ParkedLaunch | None:
        """Tie the parked launch to this window's cookie; None when gone or bound to another window."""
        return self._run(self._bind, secret, cookie)

    def claim(self, secret: str, cookie: str) -> ParkedLaunch | None:
        """Take the parked launch with the cookie it was bound to (deleting it); None otherwise."""
        return self._run(self._claim, secret, cookie)

    def _run(self, script: Any, secret: str, cookie: str) -> ParkedLaunch | None:
        if not secret or not cookie:
            return None
        raw = script(keys=[PREFIX + digest(secret)], args=[digest(cookie)])
        return ParkedLaunch(**json.loads(raw)) if raw else None
