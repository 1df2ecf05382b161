"""Append audit events to hash chains, one per course (and one for events without a course), and verify them.

Appends to one course's chain queue on that chain's head row; unrelated courses never wait on each other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
GLOBAL_CHAIN = 0  # events without a course
LEGACY_CHAIN = -1  # the single chain written before migration 0009, frozen at its last_event_id


def chain_of(course_id: int | None) -> int:
    """The chain an event belongs to."""
    return GLOBAL_CHAIN if course_id is None else course_id


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def body_parts(at: datetime, action: str, subject: str, details: dict[str, Any]) -> tuple[str, str, str, str]:
    """An event's canonical JSON in four pieces, with the actor, the course and the previous hash left out.

    The body is `p0 + actor + p1 + course + p2 + prev + p3`: the sorted-key, compact JSON of
    {action, actor, at, course, details, prev, subject}. The pieces let SQL fill in what only the database
    knows at append time (the previous hash, and for a launch the new person's and course's ids).
    """
    return (
        '{"action":' + _json(action) + ',"actor":',
        ',"at":' + _json(at.astimezone(UTC).isoformat()) + ',"course":',
        ',"details":' + _json(details) + ',"prev":"',
        '","subject":' + _json(subject) + "}",
    )


def around_prev(
    at: datetime, action: str, actor: int | None, course: int | None, subject: str, details: dict[str, Any]
) -> tuple[str, str]:
    """The canonical JSON before and after the previous hash."""
    p0, p1, p2, p3 = body_parts(at, action, subject, details)
    return p0 + _json(actor) + p1 + _json(course) + p2, p3


def event_hash(
    prev_hash: str,
    at: datetime,
    action: str,
    actor: int | None,
    course: int | None,
    subject: str,
    details: dict[str, Any],
) -> str:
    """Return the SHA-256 of an event's canonical JSON, chained to the previous hash."""
    before, after = around_prev(at, action, actor, course, subject, details)
    return hashlib.sha256((before + prev_hash + after).encode()).hexdigest()


# SQL for a chain's new head: the SHA-256 of the canonical JSON (ASCII: json.dumps escapes the rest) around the
# previous hash.
NEXT_HASH_SQL = "encode(sha256(convert_to(CAST(:before AS text) || {prev} || CAST(:after AS text), 'UTF8')), 'hex')"

# Durability: a transaction that appends an audit event commits synchronously (waits for the WAL flush), even if
# it began with synchronous_commit off (a launch does): the set_config is part of the appending statement.
DURABLE_SQL = "SELECT set_config('synchronous_commit', 'on', true)"

# One statement: the chain's head is created (first event of a course) or moved on; its row lock orders appends
# to this chain only. Under READ COMMITTED a waiting append then reads the committed head.
APPEND = text(
    f"""
WITH durable AS ({DURABLE_SQL}), head AS (
    INSERT INTO audit_chain_heads AS h (chain, prev_hash, hash)
    VALUES (:chain, '{GENESIS}', {NEXT_HASH_SQL.format(prev=f"'{GENESIS}'")})
    ON CONFLICT (chain) DO UPDATE SET prev_hash = h.hash, hash = {NEXT_HASH_SQL.format(prev="h.hash")}
    RETURNING h.prev_hash, h.hash
)
INSERT INTO audit_events (at, action, actor_person_id, course_id, subject, details, prev_hash, hash)
SELECT :at, :action, :actor, :course, :subject, :details, head.prev_hash, head.hash FROM head, durable
RETURNING id
"""
).bindparams(bindparam("details", type_=JSONB))


def append_event(
    session: Session,
    action: str,
    *,
    actor_person_id: int | None = None,
    course_id: int | None = None,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Add one event at the head of its course's chain in one statement (flushes first, never commits)."""
    session.flush()  # events may name rows still pending in the session
    details = json.loads(json.dumps(details or {}, default=str))  # what JSONB will give back
    at = utcnow()
    before, after = around_prev(at, action, actor_person_id, course_id, subject, details)
    values = {"at": at, "action": action, "actor": actor_person_id, "course": course_id, "subject": subject}
    params = {**values, "details": details, "before": before, "after": after, "chain": chain_of(course_id)}
    return int(session.scalar(APPEND, params))  # type: ignore[arg-type]


@dataclass(frozen=True)
class NewEvent:
    """One event for append_events."""

    action: str
    actor_person_id: int | None = None
    course_id: int | None = None
    subject: str = ""
    details: dict[str, Any] | None = None


def _lock_heads(session: Session, chains: list[int]) -> dict[int, str]:
    """Make sure each chain has a head row, then lock them in chain order (no deadlock between two sweeps)."""
    rows = [{"chain": c, "prev_hash": GENESIS, "hash": GENESIS} for c in chains]
    session.execute(pg_insert(AuditChainHead).values(rows).on_conflict_do_nothing(index_elements=["chain"]))
    locked = session.execute(
        select(AuditChainHead.chain, AuditChainHead.hash)
        .where(AuditChainHead.chain.in_(chains))
        .order_by(AuditChainHead.chain)
        .with_for_update()
    )
    return {r.chain: r.hash for r in locked}


SET_HEADS = text("""
UPDATE audit_chain_heads h SET prev_hash = n.prev_hash, hash = n.hash
FROM (SELECT unnest(CAST(:chains AS bigint[])) AS chain, unnest(CAST(:prevs AS text[])) AS prev_hash,
             unnest(CAST(:hashes AS text[])) AS hash) n
WHERE h.chain = n.chain
""")


def append_events(session: Session, events: list[NewEvent]) -> int:
    """Append many events, each chained in order on its course's chain (enforcement sweeps); returns how many."""
    if not events:
        return 0
    session.execute(text(DURABLE_SQL))
    heads = _lock_heads(session, sorted({chain_of(ev.course_id) for ev in events}))
    prevs: dict[int, str] = {}
    rows = []
    at = utcnow()
    for ev in events:
        chain = chain_of(ev.course_id)
        prev = heads[chain]
        details = json.loads(json.dumps(ev.details or {}, default=str))
        digest = event_hash(prev, at, ev.action, ev.actor_person_id, ev.course_id, ev.subject, details)
        rows.append(
            {
                "at": at,
                "action": ev.action,
                "actor_person_id": ev.actor_person_id,
                "course_id": ev.course_id,
                "subject": ev.subject,
                "details": details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prevs[chain], heads[chain] = prev, digest
    session.execute(insert(AuditEvent), rows)
    chains = list(prevs)
    session.execute(
        SET_HEADS, {"chains": chains, "prevs": [prevs[c] for c in chains], "hashes": [heads[c] for c in chains]}
    )
    return len(rows)


@dataclass(frozen=True)
class ChainReport:
    """Result of a chain check: how many events were read and the first broken one, if any."""

    checked: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Recompute every hash in id order, each event against the previous one of its chain; then check that each
    chain ends at its head row (else events were cut off the end, which no per-event hash could show).

    Events up to the legacy head's last_event_id form the single chain written before per-course chains.
    """
    rows_ = session.execute(select(AuditChainHead.chain, AuditChainHead.hash, AuditChainHead.last_event_id)).all()
    heads = {r.chain: r.hash for r in rows_}
    legacy_last = next((r.last_event_id or 0 for r in rows_ if r.chain == LEGACY_CHAIN), 0)
    prev: dict[int, str] = {}
    last: dict[int, int] = {}
    checked = last_id = 0
    while rows := session.scalars(
        select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
    ).all():
        for ev in rows:
            chain = LEGACY_CHAIN if ev.id <= legacy_last else chain_of(ev.course_id)
            if ev.prev_hash != prev.get(chain, GENESIS):
                return ChainReport(checked, ev.id, f"prev_hash does not match the previous event of chain {chain}")
            expected = event_hash(
                ev.prev_hash, ev.at, ev.action, ev.actor_person_id, ev.course_id, ev.subject, ev.details
            )
            if ev.hash != expected:
                return ChainReport(checked, ev.id, "hash does not match the event's content")
            prev[chain], last[chain] = ev.hash, ev.id
            checked += 1
            last_id = ev.id
        session.expunge_all()
    return _check_heads(checked, heads, prev, last)


def _check_heads(checked: int, heads: dict[int, str], prev: dict[int, str], last: dict[int, int]) -> ChainReport:
    for chain in sorted(set(prev) - set(heads)):
        return ChainReport(checked, last[chain], f"chain {chain} has no head row (audit_chain_heads)")
    for chain, head in sorted(heads.items()):
        if prev.get(chain, GENESIS) != head:
            where = last.get(chain, 0)
            return ChainReport(checked, where, f"chain {chain}: the head names an event that is gone (events removed)")
    return ChainReport(checked)
