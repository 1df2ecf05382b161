"""`python -m bench.outage`: does money stay safe while the tool's scheduler and workers are down?

N students each with one running t3.medium workspace on the simulated account (moto), with remaining budgets
spread from nothing to more than the outage costs; the term ends during the outage. The scheduler and workers
are down for T simulated hours (time-machine moves the whole process's clock): no sweep, no stop job. The web
app answers heartbeats (or not, with --web-down); the sim host plays every instance's agent with the agent's
own lease code, every --step minutes. Then the scheduler and workers come back: one reconcile and one sweep.

Prints per student the overshoot above the cap in dollars and in minutes of running cost, the instances still
running at the end, and the stops the restarted sweep had to issue. Target: no student above cap + one lease of
running cost; 0 instances running after the term end.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from redis import Redis

from bench.provision_storm import build_context, moto_server, redis_url
from bench.services import admin_url, fresh_database
from classroom.jobs.context import use_context
from config.prices import load_prices
from provisioning.aws import AwsBackend
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.sweep import meter_and_enforce
from provisioning.lease import DEFAULT_LEASE
from provisioning.sim_host import SimHost
from tests.support.outage import OutageRun, OutageStudent, flask_post, overshoot, seed_outage, walk

START = datetime(2026, 12, 17, 9, 0, tzinfo=UTC)  # the term ends at the end of the next day (course time: UTC)


def _remaining(n: int, hours: float) -> list[Decimal]:
    """Remaining budgets from ~nothing to 1.5x what T hours of a t3.medium cost."""
    top = Decimal("0.0416") * Decimal(str(hours)) * Decimal("1.5")
    return [Decimal("0.002") + top * i / max(1, n - 1) for i in range(n)]


def _row(s: OutageStudent, stopped_at: float | None, reason: str) -> tuple[str, Decimal]:
    over = overshoot(s, stopped_at, START) if stopped_at is not None else None
    minutes = over / s.compute_hourly * 60 if over is not None else None
    after = f"{(stopped_at - START.timestamp()) / 3600:7.2f} h" if stopped_at is not None else "running"
    line = (
        f"  ws {s.workspace_id:>3}  left ${s.remaining:7.3f}  stopped {after:>10}  "
        f"over cap {'—' if over is None else f'${over:+8.4f}':>10}  "
        f"({'—' if minutes is None else f'{minutes:+7.1f} min':>11} of running)  {reason}"
    )
    return line, over if over is not None else Decimal(0)


def main() -> None:
    """Run the outage and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.outage")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--hours", type=float, default=48)
    parser.add_argument("--step", type=float, default=5, help="sim host tick, simulated minutes")
    parser.add_argument("--web-down", action="store_true", help="the web app is down too (no heartbeat answers)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("CWC_SECRET_KEY", "bench-" + "x" * 40)
    admin = admin_url()
    with moto_server() as moto, fresh_database(admin, "cwc_bench_outage") as db_url:
        ctx, _ = build_context(db_url, redis_url(), moto, rate=50)
        Redis.from_url(ctx.settings.redis_url or "").flushdb()
        backend = ctx.backend
        assert isinstance(backend, AwsBackend)
        from lti_app import create_app

        app = create_app(ctx.settings.with_(base_url="http://localhost"))
        prices = load_prices().region(ctx.settings.aws_region)
        term_end = START.date() + timedelta(days=1)
        with time_machine.travel(START, tick=False) as traveller:
            with ctx.sessions() as session:
                students = seed_outage(
                    session, backend, prices, START, _remaining(args.students, args.hours), term_end=term_end
                )
            up = not args.web_down
            host = SimHost(backend, post=flask_post(app.test_client(), lambda: up))
            run = walk(host, traveller, START, args.hours, timedelta(minutes=args.step))
            use_context(ctx)  # the scheduler and workers are back: reconcile, then the sweep
            reconcile_workspaces()
            swept = meter_and_enforce()
            use_context(None)
        _report(args, students, run, swept)


def _report(args: argparse.Namespace, students: list[OutageStudent], run: OutageRun, swept: dict[str, int]) -> None:
    lease_min = DEFAULT_LEASE.total_seconds() / 60
    term_end_h = (datetime.combine(START.date() + timedelta(days=2), datetime.min.time(), UTC) - START) / timedelta(
        hours=1
    )
    print(
        f"outage: {args.students} running workspaces, scheduler and workers down {args.hours:g} h "
        f"(web {'down' if args.web_down else 'up'}), sim host tick {args.step:g} min, lease {lease_min:g} min, "
        f"term end {START.date() + timedelta(days=1)} 23:59:59 UTC ({term_end_h:g} h after the start)"
    )
    worst = Decimal("-Infinity")
    over_bound = 0
    for s in students:
        stop = run.stops.get(s.instance_id)
        line, over = _row(s, stop.at if stop else None, stop.reason if stop else "")
        print(line)
        if stop:
            worst = max(worst, over / s.compute_hourly * 60)
            over_bound += over > s.hourly * Decimal(lease_min) / 60
    print(f"worst overshoot: {worst:+.1f} min of running cost (bound: +{lease_min:g} min, one lease)")
    print(f"students above cap + one lease: {over_bound}")
    print(f"instances still running at the end (after the term end): {run.running_at_end}")
    print(f"stops re-issued by the restarted sweep: {swept['stopped']}")
    print(f"sim host ticks: {run.ticks} (and {run.idle_ticks} not played: nothing ran), wall time {run.wall_s:.1f} s")


if __name__ == "__main__":
    main()
