"""Browser terminals: one-time tickets the Flask app issues after its role checks, and live view-only sharing.

The Flask app never carries terminal traffic. It decides who may open what, then hands the browser a ticket: a
random token kept in Redis for `TICKET_TTL_S` seconds, bound to person, course, workspace and mode, and redeemed once
(GETDEL) by the terminal gateway (`provisioning/gateway`). A ticket is a bearer token bound at issue: the gateway
learns person, workspace and mode from the stored ticket only, never from the handshake (no cookie, session or query
parameter but the terminal's size), so a ticket for workspace A cannot open workspace B, nor a watch become a shell,
whoever presents it; its protection is its 256 random bits, its 30 s and its single use. Sharing is the student's
choice, kept in Redis while it lasts: staff of the course may watch (never type) only while the key exists; stopping
sharing deletes it and the gateway drops the watchers within a second.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from redis import Redis

TICKET_TTL_S = 30
SHARE_TTL_S = 4 * 3600  # sharing ends by itself after office hours
_TICKET = "cwc:term:ticket:"
_SHARE = "cwc:term:share:"
_COURSE = "cwc:term:shared-in:"
_DEBUG = "cwc:term:debug-creds:"


class Mode(StrEnum):
    """What a connection may do: the owner's shell (reads and types) or a watcher's view (reads only)."""

    SHELL = "shell"
    WATCH = "watch"
    DEBUG = "debug"  # a staff debug session's shell: the session's own certificate, recorded by the runtime


@dataclass(frozen=True)
class Ticket:
    """What the gateway learns from a redeemed ticket."""

    person_id: int
    person_name: str
    course_id: int
    workspace_id: int
    owner_person_id: int  # whose shell: the person for SHELL, the sharing student for WATCH
    mode: Mode
    staff: bool
    debug_session_id: int = 0
    private_key: str = ""  # DEBUG only: the session's key pair and certificate (made for it; never a student's)
    certificate: str = ""


def issue_ticket(redis: Redis, ticket: Ticket) -> str:
    """Store a ticket for TICKET_TTL_S seconds; return its token (sent to the browser once)."""
    token = secrets.token_urlsafe(32)
    redis.set(_TICKET + token, json.dumps(asdict(ticket)), ex=TICKET_TTL_S)
    return token


def redeem_ticket(redis: Redis, token: str) -> Ticket | None:
    """The ticket, exactly once (a second redeem, an expired or unknown token: None)."""
    if not token or len(token) > 128:
        return None
    raw = redis.getdel(_TICKET + token)
    if raw is None:
        return None
    data = json.loads(raw)
    return Ticket(**{**data, "mode": Mode(data["mode"])})


@dataclass(frozen=True)
class Share:
    """A student's live terminal, shared with the course's staff."""

    workspace_id: int
    owner_person_id: int
    owner_name: str
    course_id: int
    started_at: float = 0.0  # when sharing began (epoch seconds): watchers see nothing the terminal showed before


def start_sharing(redis: Redis, share: Share) -> None:
    """Share (idempotent: a second click extends it and keeps when it began)."""
    current = shared(redis, share.workspace_id)
    if current is not None and current.owner_person_id == share.owner_person_id and current.started_at:
        share = replace(share, started_at=current.started_at)
    elif not share.started_at:
        share = replace(share, started_at=time.time())
    pipe = redis.pipeline()
    pipe.set(_SHARE + str(share.workspace_id), json.dumps(asdict(share)), ex=SHARE_TTL_S)
    pipe.sadd(_COURSE + str(share.course_id), share.workspace_id)
    pipe.expire(_COURSE + str(share.course_id), SHARE_TTL_S)
    pipe.execute()


def stop_sharing(redis: Redis, workspace_id: int, course_id: int) -> bool:
    """Stop sharing; True when it was shared."""
    pipe = redis.pipeline()
    pipe.delete(_SHARE + str(workspace_id))
    pipe.srem(_COURSE + str(course_id), workspace_id)
    return bool(pipe.execute()[0])


def shared(redis: Redis, workspace_id: int) -> Share | None:
    """The workspace's share, while it lasts."""
    raw = redis.get(_SHARE + str(workspace_id))
    return Share(**json.loads(raw)) if raw else None


def shared_in_course(redis: Redis, course_id: int) -> list[Share]:
    """The course's shared terminals now (stale members, whose share expired, are left out and removed)."""
    found: list[Share] = []
    for member in sorted(int(m) for m in redis.smembers(_COURSE + str(course_id))):
        share = shared(redis, member)
        if share is None or share.course_id != course_id:
            redis.srem(_COURSE + str(course_id), member)
        else:
            found.append(share)
    return found


def keep_debug_credentials(redis: Redis, session_id: int, private_key: str, certificate: str, ttl_s: int) -> None:
    """A browser debug session's key pair and certificate, until the session expires (reconnects reuse them)."""
    payload = json.dumps({"private_key": private_key, "certificate": certificate})
    redis.set(_DEBUG + str(session_id), payload, ex=max(1, ttl_s))


def debug_credentials(redis: Redis, session_id: int) -> tuple[str, str] | None:
    """(private key, certificate) of a browser debug session, while it lasts."""
    raw = redis.get(_DEBUG + str(session_id))
    if not raw:
        return None
    data = json.loads(raw)
    return data["private_key"], data["certificate"]


def forget_debug_credentials(redis: Redis, session_id: int) -> None:
    """The session ended: its certificate is revoked and its key pair dropped."""
    redis.delete(_DEBUG + str(session_id))
