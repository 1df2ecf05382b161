"""Activity events in the audit hash chain, and the audit trail's export and verification.

Each stored activity event is also appended to its course's audit chain (action `activity.recorded`, its
content in the details), so a report can cite the chain's hash for every event it uses and anyone can later
check the report against the trail. An export is the chain's events of a time range as JSON lines; verifying
recomputes every hash, checks the links between consecutive events, and compares the activity rows with
their chained copies (an edited activity row or audit row is reported by id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import NewEvent, append_events, chain_of, event_hash
from classroom.models import ActivityEvent, AuditEvent

ACTION = "activity.recorded"


def subject_of(activity_id: int) -> str:
    """The audit subject naming one activity row."""
    return f"activity:{activity_id}"


def activity_record(row: ActivityEvent) -> dict[str, Any]:
    """What the chain keeps of an activity row (compared again by verify)."""
    return {
        "workspace": row.workspace_id,
        "event_id": row.event_id,
        "kind": row.kind,
        "at": row.at.astimezone(UTC).isoformat(),
        "details": row.details,
    }


def chain_activity(session: Session, course_id: int, activity_ids: Sequence[int]) -> int:
    """Append one audit event per newly stored activity row (same transaction); returns how many."""
    if not activity_ids:
        return 0
    rows = session.scalars(select(ActivityEvent).where(ActivityEvent.id.in_(activity_ids)).order_by(ActivityEvent.id))
    events = [NewEvent(ACTION, None, course_id, subject_of(r.id), activity_record(r)) for r in rows]
    return append_events(session, events)


def hashes_for(session: Session, course_id: int, activity_ids: Iterable[int]) -> dict[int, str]:
    """activity id -> the audit hash of its chained record."""
    subjects = {subject_of(i): i for i in activity_ids}
    if not subjects:
        return {}
    rows = session.execute(
        select(AuditEvent.subject, AuditEvent.hash).where(
            AuditEvent.course_id == course_id, AuditEvent.action == ACTION, AuditEvent.subject.in_(list(subjects))
        )
    )
    return {subjects[r.subject]: r.hash for r in rows}


def event_json(ev: AuditEvent) -> dict[str, Any]:
    """One audit event as exported (everything its hash covers, plus id, prev_hash and hash)."""
    return {
        "id": ev.id,
        "at": ev.at.isoformat(),
        "action": ev.action,
        "actor": ev.actor_person_id,
        "course": ev.course_id,
        "subject": ev.subject,
        "details": ev.details,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
    }


def export_events(session: Session, course_id: int | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The chain's events in [start, end), in id order (course None: the events without a course)."""
    query = select(AuditEvent).where(AuditEvent.at >= start, AuditEvent.at < end).order_by(AuditEvent.id)
    query = query.where(AuditEvent.course_id.is_(None) if course_id is None else AuditEvent.course_id == course_id)
    return [event_json(e) for e in session.scalars(query)]


@dataclass
class Verification:
    """The outcome of a verification: how many events were checked, and each problem found."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_records(records: Sequence[dict[str, Any]]) -> Verification:
    """Pure: every record's hash from its content and previous hash; consecutive records of one chain linked."""
    out = Verification()
    last: dict[int, str] = {}
    for r in records:
        at = datetime.fromisoformat(r["at"])
        expected = event_hash(r["prev_hash"], at, r["action"], r["actor"], r["course"], r["subject"], r["details"])
        if expected != r["hash"]:
            out.problems.append(f"event {r['id']}: its content does not match its hash (edited)")
        chain = chain_of(r["course"])
        if chain in last and r["prev_hash"] != last[chain]:
            out.problems.append(f"event {r['id']}: does not follow the previous exported event (removed or edited)")
        last[chain] = r["hash"]
        out.checked += 1
    return out


def verify_against_database(session: Session, records: Sequence[dict[str, Any]]) -> Verification:
    """The export checked in itself, then each event against the database and each activity row against it."""
    out = verify_records(records)
    by_id = {r["id"]: r for r in records}
    stored = {e.id: e for e in session.scalars(select(AuditEvent).where(AuditEvent.id.in_(list(by_id))))}
    for rid, r in by_id.items():
        ev = stored.get(rid)
        if ev is None:
            out.problems.append(f"event {rid}: not in the database's audit trail (removed)")
        elif (
            ev.hash != r["hash"]
            or event_hash(ev.prev_hash, ev.at, ev.action, ev.actor_person_id, ev.course_id, ev.subject, ev.details)
            != ev.hash
        ):
            out.problems.append(f"event {rid}: the database's copy differs from its hash or the export (edited)")
    _check_activity(session, records, out)
    return out


def _check_activity(session: Session, records: Sequence[dict[str, Any]], out: Verification) -> None:
    chained = {int(r["subject"].split(":", 1)[1]): r for r in records if r["action"] == ACTION}
    rows = {a.id: a for a in session.scalars(select(ActivityEvent).where(ActivityEvent.id.in_(list(chained))))}
    for aid, r in sorted(chained.items()):
        row = rows.get(aid)
        if row is None:
            out.problems.append(f"activity {aid}: cited by event {r['id']} but gone from activity_events")
        elif _canonical(activity_record(row)) != _canonical(r["details"]):
            out.problems.append(f"activity {aid}: differs from its chained record in event {r['id']} (edited)")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
