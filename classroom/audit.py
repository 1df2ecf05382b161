"""Append audit events to a hash chain, and verify the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


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


# SQL for the new head: the SHA-256 of the canonical JSON (ASCII: json.dumps escapes the rest) around the old hash.
NEXT_HASH_SQL = "encode(sha256(convert_to({before} || audit_chain_head.hash || {after}, 'UTF8')), 'hex')"

# Durability: a transaction that appends an audit event commits synchronously (waits for the WAL flush), even if
# it began with synchronous_commit off (a launch does): the set_config is part of the appending statement.
DURABLE_SQL = "SELECT set_config('synchronous_commit', 'on', true)"

APPEND = text(
    f"""
WITH durable AS ({DURABLE_SQL}), head AS (
    UPDATE audit_chain_head
    SET prev_hash = audit_chain_head.hash,
        hash = {NEXT_HASH_SQL.format(before="CAST(:before AS text)", after="CAST(:after AS text)")}
    WHERE id = 1
    RETURNING prev_hash, hash
)
INSERT INTO audit_events (at, action, actor_person_id, course_id, subject, details, prev_hash, hash)
SELECT :at, :action, :actor, :course, :subject, :details, head.prev_hash, head.hash FROM head, durable
RETURNING id
"""
).bindparams(bindparam("details", type_=JSONB))


class AuditChainMissing(RuntimeError):
    """The chain's head row is gone: nothing can be appended until the database is repaired or migrated."""

    def __init__(self) -> None:
        super().__init__("The audit chain has no head row (audit_chain_head). Run: python -m classroom db upgrade")


def append_event(
    session: Session,
    action: str,
    *,
    actor_person_id: int | None = None,
    course_id: int | None = None,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Add one event at the head of the chain in one statement (flushes first, never commits); returns its id.

    The UPDATE of the head row takes its lock, so concurrent appends queue there until the first commits, and
    under READ COMMITTED the waiting one then reads the committed head: two events never share a prev_hash.
    """
    session.flush()  # events may name rows still pending in the session
    details = json.loads(json.dumps(details or {}, default=str))  # what JSONB will give back
    at = utcnow()
    before, after = around_prev(at, action, actor_person_id, course_id, subject, details)
    values = {"at": at, "action": action, "actor": actor_person_id, "course": course_id, "subject": subject}
    new_id = session.scalar(APPEND, {**values, "details": details, "before": before, "after": after})
    if new_id is None:
        raise AuditChainMissing
    return int(new_id)


@dataclass(frozen=True)
class NewEvent:
    """One event for append_events."""

    action: str
    actor_person_id: int | None = None
    course_id: int | None = None
    subject: str = ""
    details: dict[str, Any] | None = None


def append_events(session: Session, events: list[NewEvent]) -> int:
    """Append many events in one statement, chained in order (enforcement sweeps); returns how many."""
    if not events:
        return 0
    session.execute(text(DURABLE_SQL))
    head = session.scalar(select(AuditChainHead.hash).where(AuditChainHead.id == 1).with_for_update())
    if head is None:
        raise AuditChainMissing
    prev = head
    rows = []
    at = utcnow()
    for ev in events:
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
        prev = digest
    session.execute(insert(AuditEvent), rows)
    new_head = update(AuditChainHead).where(AuditChainHead.id == 1)
    session.execute(new_head.values(prev_hash=rows[-1]["prev_hash"], hash=prev))
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
    """Recompute every hash in id order; report the first event that does not match.

    The head is read first: the event it names was committed by then, so the walk must meet it. If it does not,
    events were cut off the end of the chain (which no per-event hash could show).
    """
    head = session.scalar(select(AuditChainHead.hash).where(AuditChainHead.id == 1))
    if head is None:
        return ChainReport(0, 0, "the chain's head row (audit_chain_head) is missing")
    head_seen = head == GENESIS
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            if not head_seen:
                return ChainReport(checked, last_id, "the head names an event that is gone: events were removed")
            return ChainReport(checked)
        for ev in rows:
            if ev.prev_hash != prev:
                return ChainReport(checked, ev.id, "prev_hash does not match the previous event")
            expected = event_hash(
                ev.prev_hash, ev.at, ev.action, ev.actor_person_id, ev.course_id, ev.subject, ev.details
            )
            if ev.hash != expected:
                return ChainReport(checked, ev.id, "hash does not match the event's content")
            head_seen = head_seen or ev.hash == head
            prev = ev.hash
            checked += 1
            last_id = ev.id
        session.expunge_all()
