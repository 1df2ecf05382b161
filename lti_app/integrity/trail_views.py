"""Audit trail export and verification (instructors), the student's own activity record, and the agent's
deadline-snapshot endpoints (workspace token)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from flask import Response, abort, jsonify, request
from sqlalchemy import select

from classroom.integrity.chain import export_events, verify_against_database
from classroom.integrity.services import own_record
from classroom.integrity.snapshots import SnapshotRefused, record_snapshot, wanted
from classroom.models import Workspace
from classroom.roles import can_configure
from lti_app.auth import current, requires
from lti_app.integrity.views import _audit, _day, bp
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend
from provisioning.agent_service import token_hash
from provisioning.aws_evidence import store_for
from provisioning.backend import CloudError

MAX_VERIFY_BYTES = 20 * 1024 * 1024


@bp.get("/app/integrity/audit")
@requires(can_configure)
def audit_page() -> tuple[str, int]:
    """Export a time range of the course's trail, or verify an export against the chain."""
    return page("integrity/audit.html", result=None), 200


@bp.get("/app/integrity/audit/export")
@requires(can_configure)
def audit_export() -> Response:
    """The course's audit events of a time range as JSON lines (audited)."""
    ctx = current()
    now = datetime.now(UTC)
    start = _day(request.args.get("start", ""), now - timedelta(days=365))
    end = _day(request.args.get("end", ""), now + timedelta(days=1))
    records = export_events(db(), ctx.course.id, start, end)
    _audit("audit.exported", start=start.isoformat(), end=end.isoformat(), events=len(records))
    commit()
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    return Response(
        body,
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-trail.jsonl"'},
    )


@bp.post("/app/integrity/audit/verify")
@requires(can_configure)
def audit_verify() -> tuple[str, int]:
    """Verify an uploaded export: its hashes and links, the database's copies, the activity rows it cites."""
    ctx = current()
    upload = request.files.get("export")
    data = upload.read(MAX_VERIFY_BYTES + 1) if upload else b""
    if not data or len(data) > MAX_VERIFY_BYTES:
        abort(400, description="Choose an export file (JSON lines, at most 20 MB).")
    try:
        records = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        if any(not isinstance(r, dict) or r.get("course") != ctx.course.id for r in records):
            raise ValueError("only this course's events can be verified here")
        result = verify_against_database(db(), records)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        abort(400, description=f"This is not an audit export of this course: {exc}")
    _audit("audit.verified", events=result.checked, problems=len(result.problems))
    commit()
    return page("integrity/audit.html", result=result), 200


@bp.get("/app/my-activity")
@requires()
def my_activity() -> tuple[str, int]:
    """My own activity record in this course (never anyone else's)."""
    ctx = current()
    now = datetime.now(UTC)
    ev = own_record(db(), ctx.course.id, ctx.person.id, now - timedelta(days=365), now + timedelta(days=1))
    return page("integrity/my_activity.html", ev=ev), 200


def _agent_workspace() -> Workspace:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    ws = db().scalar(select(Workspace).where(Workspace.agent_token_hash == token_hash(token or "-")))
    if ws is None or ws.agent_token_revoked_at is not None:
        abort(403)
    return ws


@bp.post("/api/agent/snapshots")
def agent_wanted() -> tuple[Response, int]:
    """The deadline snapshots this workspace's agent should take now."""
    ws = _agent_workspace()
    return jsonify(snapshots=[{"id": s.id, "folder": s.folder} for s in wanted(db(), ws.id)]), 200


@bp.post("/api/agent/snapshots/<int:snapshot_id>")
def agent_snapshot(snapshot_id: int) -> tuple[Response, int]:
    """Receive one snapshot ({"archive": base64 of the folder's tar.gz}); stored content-addressed, recorded once."""
    ws = _agent_workspace()
    data = request.get_json(silent=True)
    try:
        body = base64.b64decode(str((data or {}).get("archive", "")), validate=True)
    except ValueError:
        body = b""
    if not body:
        return jsonify(error="bad_request", message="archive: the folder's tar.gz in base64 is required"), 400
    try:
        row = record_snapshot(db(), store_for(backend()), ws, snapshot_id, body)
    except SnapshotRefused as exc:
        return jsonify(error="bad_request", message=str(exc)), 400
    except CloudError:
        return jsonify(error="unavailable", message="the archive bucket did not answer; send it again"), 503
    commit()
    return jsonify(sha256=row.sha256, key=row.s3_key, files=row.files), 200
