"""RQ plumbing on real Redis: JSON serialisation, deterministic ids collapse duplicates, the periodic table runs."""

from __future__ import annotations

import json
import zlib

from classroom.jobs.context import forget_env_contexts
from classroom.jobs.liveness import last_sweep
from classroom.jobs.queue import ENFORCEMENT_JOBS, ENFORCEMENT_QUEUE, QUEUE_NAMES, enqueue, get_queue, make_worker
from classroom.jobs.schedule import PERIODIC_JOBS, build_scheduler, cron_job_id


def test_jobs_are_stored_as_json_and_run_by_a_worker(redis, redis_url, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)  # every worker has it: the one job context needs both
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)
    job = enqueue(redis, "classroom.jobs.tasks.verify_audit_chain", job_id="audit-verify")
    assert job is not None
    raw = redis.hget(f"rq:job:{job.id}", "data")
    assert raw is not None and isinstance(json.loads(zlib.decompress(raw)), list)  # JSON, never pickle
    again = enqueue(redis, "classroom.jobs.tasks.verify_audit_chain", job_id="audit-verify")
    assert again is not None and again.id == job.id and len(get_queue(redis)) == 1
    forget_env_contexts()
    make_worker(redis, simple=True).work(burst=True)
    forget_env_contexts()  # close the context's connections before the test database is dropped
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() is True


def test_periodic_table_enqueues_json_jobs(redis, redis_url, database_url, backend, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("CWC_AWS_ENDPOINT_URL", backend.ec2.meta.endpoint_url)
    monkeypatch.setenv("CWC_AWS_BUCKET", backend.bucket)
    scheduler = build_scheduler(redis)
    assert [j.func_name for j in scheduler.get_jobs()] == [row.func for row in PERIODIC_JOBS]
    for job in scheduler.get_jobs() * 2:  # a second round while the first still waits: no duplicates
        job.enqueue(redis)
    queues = {name: get_queue(redis, name) for name in QUEUE_NAMES}
    assert sum(len(q) for q in queues.values()) == len(PERIODIC_JOBS)
    assert (
        set(queues[ENFORCEMENT_QUEUE].job_ids)
        == {cron_job_id(row.func) for row in PERIODIC_JOBS if row.func in ENFORCEMENT_JOBS}
        == {"cron-meter_and_enforce", "cron-reconcile_workspaces", "cron-close_terms", "cron-close_workshops"}
    )
    forget_env_contexts()  # build the jobs' context from this test's environment
    make_worker(redis, simple=True).work(burst=True)
    forget_env_contexts()
    for queue in queues.values():
        assert queue.failed_job_registry.count == 0, queue.failed_job_registry.get_job_ids()
    assert sum(q.finished_job_registry.count for q in queues.values()) == len(PERIODIC_JOBS)
    assert last_sweep(redis) is not None  # the sweep recorded its success (the health endpoint reads it)
