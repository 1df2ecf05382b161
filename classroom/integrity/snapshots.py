"""Deadline snapshots: at each assignment's due time, each student's assignment folder, content-addressed.

A periodic job records a wanted snapshot for every workspace folder whose due time passed; the workspace's
agent asks for the snapshots wanted (`POST /api/agent/snapshots`), tars the folder and sends it
(`POST /api/agent/snapshots/<id>`); the tool checks the archive (every member inside the folder, size bound),
stores it under its SHA-256 in the archive bucket and records the address once: a snapshot is never replaced,
so later edits cannot change the evidence. Edits after the due time show as late edits in the evidence.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.integrity.store import EvidenceStore
from classroom.models import DeadlineSnapshot, DueDate, Workspace, WorkspaceFolder

MAX_SNAPSHOT_BYTES = 10 * 1024 * 1024  # sent as base64 in a JSON body under the app's 16 MB
MAX_FILE_BYTES = 512 * 1024  # larger files are kept in the snapshot but not read for similarity
TEXT_SUFFIXES = (".py", ".ipynb", ".r", ".R", ".java", ".c", ".cpp", ".h", ".js", ".ts", ".m", ".jl", ".sql")


class SnapshotRefused(ValueError):
    """The snapshot sent is not acceptable (wrong workspace, not wanted, malformed, too large)."""


# Raw: one INSERT ... SELECT for every folder whose due time passed (due date from the LMS sync, else the
# link's own), without a snapshot row yet, in courses that record activity (their students are told); the
# folder is the course's snapshot path with the assignment's slug. The unique key makes a rerun add nothing.
REQUEST_SQL = text("""
INSERT INTO deadline_snapshots (course_id, workspace_id, person_id, link_key, folder, due_at, requested_at)
SELECT w.course_id, w.id, w.person_id, f.link_key,
       COALESCE(replace(s.snapshot_path, '{assignment}', regexp_replace(f.folder, '^.*/', '')), f.folder),
       COALESCE(d.due_at, f.due_at), :now
FROM workspace_folders f
JOIN workspaces w ON w.id = f.workspace_id
JOIN course_policies p ON p.course_id = w.course_id AND (p.integrity ->> 'plagiarism_support') = 'true'
LEFT JOIN integrity_settings s ON s.course_id = w.course_id
LEFT JOIN LATERAL (SELECT max(due_at) AS due_at FROM due_dates
                   WHERE course_id = w.course_id AND key = f.link_key) d ON true
WHERE COALESCE(d.due_at, f.due_at) <= :now AND COALESCE(d.due_at, f.due_at) > :now - interval '30 days'
ON CONFLICT ON CONSTRAINT uq_deadline_snapshots_ws_link DO NOTHING
""")


def request_due_snapshots(session: Session, now: datetime | None = None) -> int:
    """Record a wanted snapshot for every assignment folder past its due time; returns how many were new."""
    return int(session.execute(REQUEST_SQL, {"now": now or utcnow()}).rowcount or 0)  # type: ignore[attr-defined]


def wanted(session: Session, workspace_id: int) -> list[DeadlineSnapshot]:
    """The snapshots a workspace's agent should take now."""
    return list(
        session.scalars(
            select(DeadlineSnapshot)
            .where(DeadlineSnapshot.workspace_id == workspace_id, DeadlineSnapshot.sha256.is_(None))
            .order_by(DeadlineSnapshot.id)
        )
    )


@dataclass(frozen=True)
class Checked:
    """A snapshot archive that passed the checks: its file count."""

    files: int


def check_archive(body: bytes, folder: str) -> Checked:
    """Pure: a gzip'd tar whose members all lie inside `folder`, regular files and folders only."""
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise SnapshotRefused(f"a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes")
    root = folder.strip("/")
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotRefused("the snapshot is not a readable tar.gz") from exc
    for m in members:
        name = m.name.lstrip("./")
        if (
            not (m.isfile() or m.isdir())
            or ".." in name.split("/")
            or not (name == root or name.startswith(root + "/"))
        ):
            raise SnapshotRefused(f"{m.name!r} is not a file inside {root}")
    return Checked(sum(1 for m in members if m.isfile()))


def record_snapshot(
    session: Session, store: EvidenceStore, ws: Workspace, snapshot_id: int, body: bytes
) -> DeadlineSnapshot:
    """Check and store the agent's snapshot, then record its address once (flush; the caller commits)."""
    row = session.get(DeadlineSnapshot, snapshot_id)
    if row is None or row.workspace_id != ws.id:
        raise SnapshotRefused("no such snapshot is wanted from this workspace")
    if row.sha256 is not None:
        return row  # already taken: the first one stands
    checked = check_archive(body, row.folder)
    key = store.put(body)  # outside any row lock: nothing is locked yet
    sha = key.rsplit("/", 1)[1].split(".")[0]
    session.execute(
        update(DeadlineSnapshot)
        .where(and_(DeadlineSnapshot.id == row.id, DeadlineSnapshot.sha256.is_(None)))
        .values(sha256=sha, s3_key=key, size_bytes=len(body), files=checked.files, taken_at=utcnow())
    )
    session.refresh(row)
    return row


def read_sources(body: bytes, folder: str) -> dict[str, str]:
    """Pure: the text source files of a snapshot, by path inside the assignment folder."""
    out: dict[str, str] = {}
    root = folder.strip("/") + "/"
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        for m in tar.getmembers():
            name = m.name.lstrip("./")
            if m.isfile() and m.size <= MAX_FILE_BYTES and name.endswith(TEXT_SUFFIXES) and name.startswith(root):
                data = tar.extractfile(m)
                if data is not None:
                    out[name[len(root) :]] = data.read().decode("utf-8", "replace")
    return out


def snapshots_of(session: Session, course_id: int, link_key: str) -> list[DeadlineSnapshot]:
    """The taken snapshots of one assignment."""
    return list(
        session.scalars(
            select(DeadlineSnapshot)
            .where(
                DeadlineSnapshot.course_id == course_id,
                DeadlineSnapshot.link_key == link_key,
                DeadlineSnapshot.sha256.is_not(None),
            )
            .order_by(DeadlineSnapshot.person_id)
        )
    )


def assignments_of(session: Session, course_id: int) -> list[tuple[str, str, str, datetime | None]]:
    """(link key, title, folder, due time) of every assignment opened in the course."""
    due = (
        select(DueDate.key, func.max(DueDate.due_at).label("due_at"))
        .where(DueDate.course_id == course_id)
        .group_by(DueDate.key)
        .subquery()
    )
    rows = session.execute(
        select(
            WorkspaceFolder.link_key,
            func.max(WorkspaceFolder.title),
            func.max(WorkspaceFolder.folder),
            func.coalesce(func.max(due.c.due_at), func.max(WorkspaceFolder.due_at)),
        )
        .join(Workspace, Workspace.id == WorkspaceFolder.workspace_id)
        .outerjoin(due, due.c.key == WorkspaceFolder.link_key)
        .where(Workspace.course_id == course_id)
        .group_by(WorkspaceFolder.link_key)
        .order_by(WorkspaceFolder.link_key)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]
