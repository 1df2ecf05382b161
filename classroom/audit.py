"""Append audit events to a hash chain, and verify the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import AuditEvent

GENESIS = "0" * 64
_CHAIN_LOCK = 0x43_57_43_41  # "CWCA": serialises appends so two writers never share a prev_hash


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
    body = json.dumps(
        {
            "prev": prev_hash,
            "at": at.astimezone(UTC).isoformat(),
            "action": action,
            "actor": actor,
            "course": course,
            "subject": subject,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append_event(
    session: Session,
    action: str,
    *,
    actor_person_id: int | None = None,
    course_id: int | None = None,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event at the head of the chain (flushes, never commits)."""
    details = json.loads(json.dumps(details or {}, default=str))  # what JSONB will give back
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or GENESIS
    at = utcnow()
    event = AuditEvent(
        at=at,
        action=action,
        actor_person_id=actor_person_id,
        course_id=course_id,
        subject=subject,
        details=details,
        prev_hash=prev,
        hash=event_hash(prev, at, action, actor_person_id, course_id, subject, details),
    )
    session.add(event)
    session.flush()
    return event


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
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or GENESIS
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
    """Recompute every hash in id order; report the first event that does not match."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(checked)
        for ev in rows:
            if ev.prev_hash != prev:
                return ChainReport(checked, ev.id, "prev_hash does not match the previous event")
            expected = event_hash(
                ev.prev_hash, ev.at, ev.action, ev.actor_person_id, ev.course_id, ev.subject, ev.details
            )
            if ev.hash != expected:
                return ChainReport(checked, ev.id, "hash does not match the event's content")
            prev = ev.hash
            checked += 1
            last_id = ev.id
        session.expunge_all()
