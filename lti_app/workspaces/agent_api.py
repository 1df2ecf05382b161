"""The agent's API: heartbeats authenticated by each workspace's own bearer token."""

from __future__ import annotations

from datetime import timedelta

from botocore.exceptions import BotoCoreError
from flask import Blueprint, Response, jsonify, request

from config.prices import PriceError
from lti_app.runtime import commit, db, settings
from lti_app.workspaces.glue import backend, prices
from provisioning.agent_archive import UPLOAD_URL_S, upload_request
from provisioning.agent_service import HeartbeatRejected, parse_report, record_heartbeat
from provisioning.opening import folders_of

bp = Blueprint("agent_api", __name__)


@bp.post("/api/agent/heartbeat")
def heartbeat() -> tuple[Response, int]:
    """Store one report; answer with the SSH keys the workspace should accept, its lease (or stop), the
    assignment folders to create and, while it retires, where to upload its home's archive."""
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
    extra: dict[str, object] = {"folders": folders}
    if answer.archive_key:  # the retire flow asks the agent for the home's archive (a presigned PUT, made locally)
        try:
            url = backend().archive_upload_url(answer.archive_key, UPLOAD_URL_S)
            extra["archive"] = upload_request(answer.archive_key, url)
        except BotoCoreError:  # no credentials to sign with: asked again at the next heartbeat
            pass
    return jsonify({**answer.as_json(), **extra}), 200
