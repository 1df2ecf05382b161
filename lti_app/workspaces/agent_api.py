"""The agent's API: heartbeats authenticated by each workspace's own bearer token."""

from __future__ import annotations

from datetime import timedelta

from botocore.exceptions import BotoCoreError
from flask import Blueprint, Response, jsonify, request

from classroom.jobs.queue import enqueue
from classroom.services.debug_recordings import MAX_CAST_BYTES, RecordingRefused, store_agent_recording
from classroom.services.debug_sessions import open_labels
from classroom.services.messages import banner_text, unread_for_login
from classroom.services.opening import folders_of
from classroom.services.resets import RESET_JOB, reset_job_id
from config.prices import PriceError
from lti_app.runtime import commit, db, runtime, settings
from lti_app.workspaces.glue import backend, prices
from provisioning.activity import MAX_BODY_BYTES, parse_batch, record_activity
from provisioning.agent_archive import UPLOAD_URL_S, upload_request
from provisioning.agent_service import HeartbeatRejected, parse_report, record_heartbeat
from provisioning.backend import CloudError
from provisioning.ssh_ca import revoked_serials
from provisioning.userdata import agent_bundle, agent_bundle_sha256

bp = Blueprint("agent_api", __name__)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


@bp.get("/api/agent/bundle.tar.gz")
def bundle() -> Response:
    """The agent's code, fetched by each new EC2 workspace at first boot (too large for user data; no secret in
    it: the user data checks its SHA-256 before unpacking)."""
    return Response(agent_bundle(), mimetype="application/gzip",
                    headers={"X-Content-SHA256": agent_bundle_sha256()})  # fmt: skip


@bp.post("/api/agent/activity")
def activity() -> tuple[Response, int]:
    """Store a batch of activity events (all or nothing; duplicates by id skipped)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return jsonify(error="too_large", message=f"a batch is at most {MAX_BODY_BYTES} bytes"), 413
    try:
        workspace_id, events = parse_batch(request.get_json(silent=True))
    except ValueError as exc:
        return jsonify(error="bad_request", message=str(exc)), 400
    try:
        counts = record_activity(db(), _bearer(), workspace_id, events)
    except HeartbeatRejected as exc:
        return jsonify(error="forbidden", message=str(exc)), 403
    commit()
    return jsonify(counts), 200


@bp.post("/api/agent/heartbeat")
def heartbeat() -> tuple[Response, int]:
    """Store one report; answer with the SSH keys the workspace should accept, its lease (or stop), the
    assignment folders to create, whether to collect activity and typed commands, the unread staff messages for
    the login banner (`motd`) and, while it retires, where to upload its home's archive."""
    token = _bearer()
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
    body = {**answer.as_json(), "folders": folders}
    course_id, person_id = answer.owner  # unread staff messages (handing them to the agent is not showing them)
    body["motd"] = banner_text(unread_for_login(db(), course_id, person_id, record=False))
    body["debug_open"] = open_labels(db(), report.workspace_id)  # the agent ends any other debug session's shells
    body["revoked_serials"] = revoked_serials(db(), report.workspace_id)  # sshd's RevokedKeys, written by the agent
    commit()
    if answer.resume_reset is not None:  # a reset's new instance is pinned: its reset carries on now
        enqueue(runtime().redis, RESET_JOB, answer.resume_reset, job_id=reset_job_id(answer.resume_reset), retry=None)
    if answer.archive_key:  # the retire flow asks the agent for the home's archive (a presigned PUT, made locally)
        try:
            url = backend().archive_upload_url(answer.archive_key, UPLOAD_URL_S)
            body["archive"] = upload_request(answer.archive_key, url)
        except BotoCoreError:  # no credentials to sign with: asked again at the next heartbeat
            pass
    return jsonify(body), 200


@bp.post("/api/agent/debug-recordings/<label>")
def debug_recording(label: str) -> tuple[Response, int]:
    """Store one EC2 debug session's recording (the asciicast file as the body) in the course's archive bucket and
    list it with the session; a retried upload of the same file is stored once."""
    if (request.content_length or 0) > MAX_CAST_BYTES:
        return jsonify(error="too_large", message=f"a recording is at most {MAX_CAST_BYTES} bytes"), 413
    raw = request.stream.read(MAX_CAST_BYTES + 1)
    try:
        stored = store_agent_recording(db(), backend(), _bearer(), label, raw)
    except HeartbeatRejected as exc:
        return jsonify(error="forbidden", message=str(exc)), 403
    except RecordingRefused as exc:
        return jsonify(error="refused", message=str(exc)), exc.status
    except CloudError:
        return jsonify(error="unavailable", message="the archive bucket did not answer; send it again"), 503
    commit()
    rec = stored.recording
    return jsonify(id=rec.id, key=rec.s3_key, sha256=rec.sha256, new=stored.new), 200
