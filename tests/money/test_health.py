"""/healthz tells the truth about enforcement: an enforcement worker alive and a sweep within 3 minutes."""

from __future__ import annotations

from datetime import timedelta

from rq import Worker
from rq.serializers import JSONSerializer

from classroom.db import utcnow
from classroom.jobs.liveness import record_sweep
from classroom.jobs.queue import DEFAULT_QUEUE, ENFORCEMENT_QUEUE, get_queue
from tests.support.lti import launch, register, tool_token


def _worker(redis, queue: str) -> Worker:  # type: ignore[no-untyped-def]
    worker = Worker([get_queue(redis, queue)], connection=redis, serializer=JSONSerializer)
    worker.register_birth()
    return worker


def test_healthz_is_503_without_an_enforcement_worker_or_a_recent_sweep_and_200_with_both(client, redis):
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["database"] == "ok"
    assert answer.get_json()["enforcement"].startswith("delayed: no enforcement worker is running")
    record_sweep(redis, utcnow())
    _worker(redis, DEFAULT_QUEUE)  # a worker, but not on the enforcement queue: sweeps would wait forever
    assert client.get("/healthz").status_code == 503
    enforcer = _worker(redis, ENFORCEMENT_QUEUE)
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.get_json()["enforcement"] == "ok" and ok.get_json()["enforcement_workers"] == 1
    record_sweep(redis, utcnow() - timedelta(minutes=3, seconds=5))
    stale = client.get("/healthz").get_json()
    assert stale["status"] == "degraded" and "the last enforcement sweep was 3 minutes ago" in stale["enforcement"]
    enforcer.register_death()
    record_sweep(redis, utcnow())
    assert client.get("/healthz").status_code == 503


def test_staff_pages_say_enforcement_is_delayed(client, session, platform, redis):
    register(session, platform)
    ta = tool_token(launch(client, platform, platform.user("ta")))
    assert "Enforcement is delayed" in client.get("/app/home", query_string={"t": ta}).get_data(as_text=True)
    _worker(redis, ENFORCEMENT_QUEUE)
    record_sweep(redis, utcnow())
    assert "Enforcement is delayed" not in client.get("/app/home", query_string={"t": ta}).get_data(as_text=True)
