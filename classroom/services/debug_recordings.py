"""Recordings an EC2 workspace's agent uploads for a debug session (the local runtime stores its own).

The agent sends each finished asciicast with the workspace's token; the tool checks the token, that the session
belongs to that workspace, and that the body is an asciicast v2 file, then stores it in the course's archive
bucket (through the CloudBackend port, under the same prefix as the runtime's recordings) and lists it with the
session, so the replay page shows it like any other. Idempotent: the key is named by the file's SHA-256, so a
retried upload stores and lists it once. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import DebugRecording, DebugSession, Workspace
from provisioning.agent.cwc_cast import CAST_TYPE, parse_cast
from provisioning.agent_service import HeartbeatRejected, token_hash
from provisioning.backend import CloudBackend
from provisioning.course_cloud import course_key

MAX_CAST_BYTES = 32 * 1024 * 1024  # the agent's limit too (cwc_debugrec.MAX_CAST_BYTES)


class RecordingRefused(ValueError):
    """Not stored: the message says why; `status` is the HTTP answer (400, 404 or 413)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Stored:
    """The listed recording, and whether this upload stored it (False: the same file was already there)."""

    recording: DebugRecording
    new: bool


def recording_key(course_id: int, label: str, name: str) -> str:
    """Where a debug session's recording lives in the archive bucket (the runtime's and the agent's). Pure."""
    return f"courses/{course_key(course_id)}/archives/debug/{label}/{name}.cast"


def _session_of(session: Session, token: str, label: str) -> DebugSession:
    ws = session.scalar(select(Workspace).where(Workspace.agent_token_hash == token_hash(token or "-")))
    if ws is None or ws.agent_token_revoked_at is not None:
        raise HeartbeatRejected("unknown or revoked agent token")
    digits = label[1:] if label.startswith("D") else ""
    ds = session.get(DebugSession, int(digits)) if digits.isascii() and digits.isdigit() and len(digits) < 10 else None
    if ds is None or ds.workspace_id != ws.id:
        raise RecordingRefused(f"no debug session {label[:20]} on this workspace", 404)
    return ds


def store_agent_recording(
    session: Session, backend: CloudBackend, token: str, label: str, raw: bytes, now: datetime | None = None
) -> Stored:
    """Check and store one uploaded recording (HeartbeatRejected for a bad token; CloudError from the bucket)."""
    ds = _session_of(session, token, label)
    if len(raw) > MAX_CAST_BYTES:
        raise RecordingRefused(f"a recording is at most {MAX_CAST_BYTES} bytes", 413)
    try:
        cast = parse_cast(raw)
    except (ValueError, TypeError) as exc:
        raise RecordingRefused(f"not an asciicast v2 recording: {exc}", 400) from None
    digest = hashlib.sha256(raw).hexdigest()
    key = recording_key(ds.course_id, label, f"ec2-{digest[:32]}")
    known = session.scalar(select(DebugRecording).where(DebugRecording.s3_key == key))
    if known is not None:
        return Stored(known, False)
    result = backend.put_private_object(key, raw, content_type=CAST_TYPE, course_key=course_key(ds.course_id))
    stamp = cast.header.get("timestamp")
    started = datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int) and 0 < stamp < 2**33 else None
    session.execute(
        insert(DebugRecording)
        .values(
            debug_session_id=ds.id,
            s3_key=result.key,
            sha256=result.sha256,
            size_bytes=result.size,
            started_at=started or now or utcnow(),
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["s3_key"])
    )
    row = session.scalar(select(DebugRecording).where(DebugRecording.s3_key == result.key))
    assert row is not None
    return Stored(row, True)
