"""The agent's API: heartbeats authenticated by each workspace's own bearer token."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify, request

from config.prices import PriceError
from lti_app.runtime import commit, db, settings
from lti_app.workspaces.glue import prices
from provisioning.agent_service import HeartbeatRejected, parse_report, record_heartbeat
from provisioning.opening import folders_of

bp = Blueprint("agent_api", __name__)


@bp.post("/api/agent/heartbeat")
def heartbeat() -> tuple[Response, int]:
    """Store one report; answer with the SSH keys the workspace should accept, its lease (or stop) and the
    assignment folders to create."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    try:
        report = parse_report(request.get_json(silent=True))
    except ValueError as exc:
        return jsonify(error="bad_request", message=str(exc)), 400
    try:
        region_prices = prices()
    except PriceError:  # the region cannot be priced: the answer says stop (fail closed)
        region_prices = None
    try:
        answer = record_heartbeat(
            db(), token, report, prices=region_prices, lease=timedelta(seconds=settings().lease_s)
        )
    except HeartbeatRejected as exc:
        return jsonify(error="forbidden", message=str(exc)), 403
    folders = [f.folder for f in folders_of(db(), report.workspace_id)]
    commit()
    return jsonify({**answer.as_json(), "folders": folders}), 200
