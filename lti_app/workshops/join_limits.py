"""Rate limits on joining a workshop, per client IP and per access code, in Redis (the `limits` library, the
engine flask-limiter runs on, used directly so the limits apply to this one form and need no app-wide extension).

Generous enough for a room behind one NAT (a conference's walk-ins share an address), tight enough that a burst
or a guessing script gets 429s long before it costs anything; the participant cap bounds workspaces regardless.
"""

from __future__ import annotations

import hashlib

from flask import request
from limits import RateLimitItem, parse

from lti_app.errors import ToolError
from lti_app.rate_limits import allow

PER_CLIENT = parse("60/10 minutes")  # one address: a room of walk-ins behind a NAT, with retries
PER_CODE = parse("200/10 minutes")  # one code, from anywhere (hashed: no code is written to Redis)


class TooManyAttempts(ToolError):
    status = 429
    title = "Too many attempts"


def _hit(item: RateLimitItem, *key: str) -> None:
    if not allow(item, "workshop-join", *key):
        raise TooManyAttempts("Too many join attempts. Wait a few minutes and try again.")


def check_join_rate(normalised_code: str) -> None:
    """Count this join attempt against its client and its code; raise TooManyAttempts past either limit."""
    _hit(PER_CLIENT, "ip", request.remote_addr or "unknown")
    _hit(PER_CODE, "code", hashlib.sha256(normalised_code.encode()).hexdigest()[:32])
