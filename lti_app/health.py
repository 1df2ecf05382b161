"""Health endpoint: database, Redis, and whether enforcement runs (an enforcement worker, a recent sweep)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from classroom.db import utcnow
from classroom.jobs.liveness import enforcement_status
from classroom.jobs.queue import worker_count
from lti_app.runtime import db, runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Report each dependency; 503 when the database or Redis is down or enforcement is delayed."""
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
        status = enforcement_status(runtime().redis, utcnow())
        checks["enforcement_workers"] = status.workers
        checks["last_sweep"] = status.last_sweep.isoformat() if status.last_sweep else None
        checks["enforcement"] = "ok" if not status.delayed else "delayed: " + "; ".join(status.problems)
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(checks.get(k) == "ok" for k in ("database", "redis", "enforcement"))
    return jsonify(status="ok" if healthy else "degraded", **checks), 200 if healthy else 503
