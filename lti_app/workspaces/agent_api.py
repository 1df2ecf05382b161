"""The agent's API: heartbeats authenticated by each workspace's own bearer token."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from lti_app.runtime import commit, db
from provisioning.agent_service import HeartbeatRejected, parse_report, record_heartbeat
from provisioning.opening import folders_of

bp = Blueprint("agent_api", __name__)


@bp.post("/api/agent/heartbeat")
def heartbeat() -> tuple[Response, int]:
    """Store one report; answer with the SSH keys the workspace should accept and the assignment folders to create."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    try:
        report = parse_report(request.get_json(silent=True))
    except ValueError as exc:
        return jsonify(error="bad_request", message=str(exc)), 400
    try:
        keys = record_heartbeat(db(), token, report)
    except HeartbeatRejected as exc:
        return jsonify(error="forbidden", message=str(exc)), 403
    folders = [f.folder for f in folders_of(db(), report.workspace_id)]
    commit()
    return jsonify(authorized_keys=keys, folders=folders), 200
