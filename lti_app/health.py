"""Health endpoint: database, Redis and worker state."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from classroom.jobs.queue import worker_count
from lti_app.runtime import db, runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Report each dependency; 503 when the database or Redis is down."""
    checks: dict[str, object] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        runtime().redis.ping()
        checks["redis"] = "ok"
        checks["workers"] = worker_count(runtime().redis)
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = checks.get("database") == "ok" and checks.get("redis") == "ok"
    return jsonify(status="ok" if healthy else "degraded", **checks), 200 if healthy else 503
