"""Activity events from workspace agents: validated as a whole batch, stored append-only, idempotent by id.

What is collected follows the course's integrity setting ("plagiarism_support" in the set-up wizard): with it
off, a batch is accepted and nothing of it is stored (the agent then clears its spool), so only heartbeats and
idleness are kept. A bad token, a malformed batch or a report for another workspace stores nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.integrity.chain import chain_activity
from classroom.integrity.settings import collects_activity, records_commands
from classroom.models import ActivityEvent, CoursePolicy, Workspace
from provisioning.agent_service import HeartbeatRejected, token_hash

KINDS = frozenset({"ssh_login", "ssh_logout", "file_changed", "file_deleted", "git_commit", "transfer", "jupyter",
                   "download", "extract", "command"})  # fmt: skip
MAX_EVENTS = 200
MAX_DETAILS_BYTES = 8192
MAX_BODY_BYTES = 1024 * 1024
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class NewActivity:
    """One validated event."""

    event_id: str
    kind: str
    at: datetime
    details: dict[str, Any]


def parse_batch(body: Any) -> tuple[int, list[NewActivity]]:
    """(workspace_id, events) from the agent's JSON; ValueError naming the first problem. Pure."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValueError("body must be an object with an events list")
    ws_id, raw = body.get("workspace_id"), body["events"]
    if not isinstance(ws_id, int) or isinstance(ws_id, bool) or len(raw) > MAX_EVENTS:
        raise ValueError(f"workspace_id must be an integer and a batch at most {MAX_EVENTS} events")
    events, ids = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not EVENT_ID.match(str(item.get("id", ""))):
            raise ValueError(f"event {i}: an id of 8-64 letters, digits, _ or - is required")
        if item.get("kind") not in KINDS:
            raise ValueError(f"event {i}: unknown kind")
        at, details = item.get("at"), item.get("details", {})
        if not isinstance(at, int) or isinstance(at, bool) or not 0 < at < 2**33:
            raise ValueError(f"event {i}: at must be epoch seconds")
        if not isinstance(details, dict) or len(json.dumps(details)) > MAX_DETAILS_BYTES:
            raise ValueError(f"event {i}: details must be an object under {MAX_DETAILS_BYTES} bytes")
        if item["id"] in ids:
            continue  # the same event twice in one batch is one event
        ids.add(item["id"])
        events.append(NewActivity(item["id"], item["kind"], datetime.fromtimestamp(at, UTC), details))
    return ws_id, events


def collecting(session: Session, course_id: int) -> bool:
    """Whether the course's integrity setting asks for activity events."""
    integrity = session.scalar(select(CoursePolicy.integrity).where(CoursePolicy.course_id == course_id))
    return collects_activity(integrity)


def record_activity(session: Session, token: str, workspace_id: int, events: list[NewActivity]) -> dict[str, int]:
    """Store the batch for the token's own workspace; duplicates (by id) are skipped. Returns counts."""
    ws = session.scalar(select(Workspace).where(Workspace.agent_token_hash == token_hash(token or "-")))
    if ws is None or ws.agent_token_revoked_at is not None:
        raise HeartbeatRejected("unknown or revoked agent token")
    if ws.id != workspace_id:
        raise HeartbeatRejected("this token belongs to another workspace")
    if not events:
        return {"stored": 0, "duplicates": 0, "not_collected": 0}
    if not collecting(session, ws.course_id):
        return {"stored": 0, "duplicates": 0, "not_collected": len(events)}
    if not records_commands(session, ws.course_id):  # typed commands only where the course records them
        events = [e for e in events if e.kind != "command"]
    if not events:
        return {"stored": 0, "duplicates": 0, "not_collected": 0}
    now = utcnow()
    rows = [{"workspace_id": ws.id, "event_id": e.event_id, "kind": e.kind, "at": e.at, "details": e.details,
             "received_at": now} for e in events]  # fmt: skip
    stored = session.scalars(
        insert(ActivityEvent)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_activity_events_ws_event")
        .returning(ActivityEvent.id)
    ).all()
    chain_activity(session, ws.course_id, list(stored))  # each stored event in the course's audit chain
    return {"stored": len(stored), "duplicates": len(events) - len(stored), "not_collected": 0}
