"""The minute's metering + enforcement sweep over 1,000 and 10,000 live workspaces on PostgreSQL.

Run: `python -m bench.sweep [--sizes 1000 10000] [--sweeps 5] [--explain]`.

For each size: a fresh migrated database (`cwc_bench_sweep_<pid>`, dropped at the end), bulk-loaded with a
mid-semester history in the same proportions at every size. Per 1,000 workspaces: 652 running and active, 200
hibernated, 100 stopped, and 48 that cross a line at a known sweep (12 reach their budget cap, 12 go idle, 18
pass the 50 or 75 % alert, 6 reach the daily cap), so every measured sweep stops workspaces and sends alerts;
where the planner draws its lines is asked of the planner itself, so the mix holds whatever its rules. About
43 state events per workspace, 45 days of spend_daily per student, an hour of per-minute ledger entries.

One warm-up sweep, then `--sweeps` measured ones a minute apart, each `run_sweep` + commit as
`meter_and_enforce` runs it (the stop jobs are not run, there is no cloud here; 20 s later the stopped
workspaces are marked stopped as reconcile would, outside the measurement). A `before_cursor_execute` listener
counts SQL statements. Prints a table and PASS/FAIL verdicts against the targets (under 1 s at 10,000; the
same statement count at both sizes) and writes bench/out/sweep.json. `--explain` adds EXPLAIN ANALYZE of the
accrual and position queries at the largest size. Exit code 0 only if every target passes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from bench.services import admin_url, fresh_database
from classroom.budget.enforcement import ONCE, StudentPosition, plan_enforcement
from classroom.db import make_engine, make_session_factory
from classroom.services.enforcement import load_positions, run_sweep
from classroom.services.metering import accrual_params
from classroom.sql.metering import ACCRUE_SQL
from classroom.sql.sweep import POSITIONS_SQL, RUNNING_SQL
from config.prices import load_prices

OUT = Path(__file__).resolve().parent / "out" / "sweep.json"
PRICES = load_prices().region("us-east-1")
TZ = ZoneInfo("America/Los_Angeles")
T0 = datetime(2024, 10, 15, 18, 0, tzinfo=UTC)  # Tuesday of week 8, 11:00 in the course's time zone
H0 = datetime(2024, 9, 1, 17, 0, tzinfo=UTC)  # the first click, week 1
TODAY = T0.astimezone(TZ).date()
STUDENTS_PER_COURSE = 50
CAP, IDLE_MIN = Decimal(24), 240  # the CS 229 policy every course gets (and a $5 daily cap)
DISK_GB, TYPE = 30, "t3.medium"
RUN_MINUTE = (PRICES.running_hourly(TYPE) + PRICES.storage_hourly(DISK_GB)) / 60  # a running workspace, a minute
SESSIONS = 10  # past work sessions per workspace (four state events each)
LEDGER_MINUTES = 60
TARGET_SECONDS = 1.0
TEMPLATES = '{"ml-cpu-student": "approved", "ml-final-project": "on_request", "gpu-ml-workstation": "blocked"}'


# --- a mid-semester history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """What one workspace does around the measured sweeps; `batch` is the sweep (0 = warm-up) it crosses at."""

    kind: str  # active | hibernated | stopped | budget | idle | alert | daily
    batch: int = 0
    threshold: int = 0


def role(i: int) -> Role:
    """The role of workspace i: the same mix in every 1,000 (see the module docstring)."""
    r = i % 1000
    if r < 12:
        return Role("budget", r // 2)
    if r < 24:
        return Role("idle", (r - 12) // 2)
    if r < 42:  # 50 and 75 %: with the storage reserve, 90 % can mean the cap already
        return Role("alert", (r - 24) // 3, (50, 75, 50)[(r - 24) % 3])
    if r < 48:
        return Role("daily", r - 42)
    return Role("active") if r < 700 else Role("hibernated") if r < 900 else Role("stopped")


def _total_spend(ro: Role) -> tuple[Decimal, Decimal]:
    """(spend before today, spend today); near-cap students are placed exactly by `calibrate`."""
    # At sweep k (T0 + k min) a running workspace has accrued k+1 minutes since metered_until (T0 - 1 min).
    if ro.kind == "alert":  # the percentage reaches the threshold first at k = batch
        return CAP * ro.threshold / 100 - (ro.batch + Decimal("0.5")) * RUN_MINUTE - Decimal("0.05"), Decimal("0.05")
    if ro.kind == "budget":
        return Decimal("18.00"), Decimal("0.05")
    if ro.kind == "daily":
        return Decimal("6.60"), Decimal("3.00")
    return Decimal("6.60"), Decimal("0.05")


def _events(i: int, ro: Role) -> list[tuple[Any, ...]]:
    """Requested, provisioned, SESSIONS past sessions (start, run, stop, park), and today's for running ones."""
    start = H0 + timedelta(hours=i % 8)
    parked = "stopped" if ro.kind == "stopped" else "hibernated"
    steps = [(start - timedelta(minutes=10), None, "requested")]
    steps.append((start - timedelta(minutes=9), "requested", "provisioning"))
    previous = "provisioning"
    for j in range(SESSIONS):
        at = start + timedelta(days=4 * j)
        if j:
            steps.append((at, previous, "starting"))
            previous = "starting"
        steps.append((at + timedelta(minutes=1), previous, "running"))
        steps.append((at + timedelta(hours=2), "running", "stopping"))
        steps.append((at + timedelta(hours=2, minutes=1), "stopping", parked))
        previous = parked
    if ro.kind not in ("hibernated", "stopped"):
        steps.append((T0 - timedelta(hours=6), parked, "starting"))
        steps.append((T0 - timedelta(hours=6) + timedelta(minutes=1), "starting", "running"))
    actor = {"requested": "student", "starting": "student", "stopping": "student"}
    return [(i, at, old, new, actor.get(new, "reconcile"), "") for at, old, new in steps]


def _workspace(i: int, course: int, ro: Role, last_event: datetime) -> tuple[Any, ...]:
    state = {"hibernated": "hibernated", "stopped": "stopped"}.get(ro.kind, "running")
    if ro.kind == "idle":  # idle for exactly the limit at sweep `batch`
        active = T0 + timedelta(minutes=ro.batch - IDLE_MIN)
    else:
        active = T0 - timedelta(minutes=5) if state == "running" else last_event
    return (i, course, i, "cs229-workspace", "Homework", "ml-cpu-student", TYPE, DISK_GB, "us-east-1", state,
            f"i-{i:017x}", "us-east-1a", "", "", "hibernate" if state == "hibernated" else "",
            H0, last_event, active, T0 - timedelta(minutes=1))  # fmt: skip


def _spend_rows(i: int, course: int, ro: Role) -> list[tuple[Any, ...]]:
    before, today = _total_spend(ro)
    days = [TODAY - timedelta(days=d) for d in range(1, 45)]
    each = (before / len(days)).quantize(Decimal("1e-12"))
    amounts = [each] * len(days)
    amounts[0] += before - each * len(days)  # the rounding remainder, so the total is exact
    rows = [
        (course, i, d, a * Decimal("0.45"), a - a * Decimal("0.45"), Decimal(3600))
        for d, a in zip(days, amounts, strict=True)
    ]
    rows.append((course, i, TODAY, today, Decimal(0), Decimal(600)))
    return rows


def _alerts_sent(i: int, course: int, ro: Role) -> list[tuple[Any, ...]]:
    sent = {"budget": (50, 75, 90), "alert": tuple(t for t in (50, 75) if t < ro.threshold)}.get(ro.kind, ())
    return [(course, i, f"budget-{t}", ONCE, H0) for t in sent]


def populate(url: str, n: int) -> dict[str, int]:
    """Bulk-load courses, policies, students, instructors, workspaces, events, spend and ledger (COPY)."""
    courses = n // STUDENTS_PER_COURSE
    each = [(i, role(i - 1), (i - 1) // STUDENTS_PER_COURSE + 1) for i in range(1, n + 1)]
    with psycopg.connect(url) as conn:
        _load_people(conn, n, courses)
        loaded = {
            "workspaces": _copy(conn, "workspaces (id, course_id, person_id, link_key, link_title, template_id, "
                                "instance_type, volume_gb, region, state, instance_id, availability_zone, public_ip, "
                                "failure_reason, stop_mode, created_at, state_changed_at, last_activity_at, "
                                "metered_until)", (_workspace(i, c, ro, _events(i, ro)[-1][1]) for i, ro, c in each)),
            "workspace_events": _copy(conn, "workspace_events (workspace_id, at, from_state, to_state, actor, reason)",
                                      (e for i, ro, _ in each for e in _events(i, ro))),
            "spend_daily": _copy(conn, "spend_daily (course_id, person_id, day, compute, storage, running_seconds)",
                                 (r for i, ro, c in each for r in _spend_rows(i, c, ro))),
            "alerts_sent": _copy(conn, "alerts_sent (course_id, person_id, kind, day, created_at)",
                                 (r for i, ro, c in each for r in _alerts_sent(i, c, ro))),
            "ledger_entries": _copy(conn, "ledger_entries (workspace_id, course_id, person_id, period_start, "
                                    "period_end, running_seconds, compute, storage, created_at)",
                                    (r for i, ro, c in each for r in _ledger_rows(i, c, ro))),
        }  # fmt: skip
        conn.execute("SELECT setval('workspaces_id_seq', %s)", (n,))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return {"courses": courses, **loaded}


def calibrate(url: str, n: int) -> None:
    """Place each near-cap student so that the planner itself first stops them at their batch's sweep.

    The planner (pure) is asked where its line is for each of them at T0, whatever its rule (spend plus a
    minute, plus the storage reserve, ...); their spend is then set half a minute of growth short of the
    line at their sweep. Spend grows between sweeps by the compute plus (or, with a storage reserve, only)
    the storage of a running minute; the midpoint of the two is used, close enough for six sweeps.
    """
    engine = make_engine(url, pool_pre_ping=False)
    growth = PRICES.running_hourly(TYPE) / 60 + PRICES.storage_hourly(DISK_GB) / 120
    with make_session_factory(engine)() as session:
        positions = {p.person_id: p for p in load_positions(session, T0, PRICES)}
        for i in range(1, n + 1):
            ro = role(i - 1)
            if ro.kind not in ("budget", "daily"):
                continue
            line = _line(positions[i], daily=ro.kind == "daily")
            delta = line - (ro.batch + Decimal("0.5")) * growth
            day = TODAY if ro.kind == "daily" else TODAY - timedelta(days=1)
            session.execute(
                text("UPDATE spend_daily SET compute = compute + :d WHERE person_id = :p AND day = :day"),
                {"d": delta, "p": i, "day": day},
            )
        session.commit()
    engine.dispose()


def _line(p: StudentPosition, *, daily: bool) -> Decimal:
    """How much more spend (today's, for the daily cap) makes the planner stop this student now."""
    code = "daily_cap" if daily else "budget"
    lo, hi = Decimal(-30), Decimal(30)
    for _ in range(48):
        mid = (lo + hi) / 2
        later = replace(p, spent_today=p.spent_today + mid) if daily else replace(p, spent=p.spent + mid)
        if any(s.code == code for s in plan_enforcement([later], T0, set()).stops):
            hi = mid
        else:
            lo = mid
    return hi


def _ledger_rows(i: int, course: int, ro: Role) -> Iterator[tuple[Any, ...]]:
    """The last hour, one entry a minute, as the minute's accrual writes them."""
    running = ro.kind not in ("hibernated", "stopped")
    compute = PRICES.running_hourly(TYPE) / 60 if running else Decimal(0)
    storage = PRICES.storage_hourly(DISK_GB) / 60
    for m in range(LEDGER_MINUTES, 0, -1):
        a = T0 - timedelta(minutes=m + 1)
        yield (i, course, i, a, a + timedelta(minutes=1), 60 if running else 0, compute, storage, a)


def _load_people(conn: psycopg.Connection, n: int, courses: int) -> None:
    p = {"n": n, "c": courses, "h0": H0, "templates": TEMPLATES}
    conn.execute(
        "INSERT INTO platforms (id, issuer, client_id, name, product, auth_login_url, auth_token_url, key_set_url, "
        "accept_new_deployments, frame_origins, created_at) VALUES (1, 'https://lms.bench.example', 'bench', "
        "'Bench LMS', 'canvas', 'https://lms.bench.example/auth', 'https://lms.bench.example/token', "
        "'https://lms.bench.example/jwks', false, '{}', %(h0)s)",
        p,
    )
    conn.execute(
        "INSERT INTO deployments (id, platform_id, deployment_id, status, created_at) "
        "VALUES (1, 1, 'bench', 'approved', %(h0)s)",
        p,
    )
    conn.execute(
        "INSERT INTO courses (id, platform_id, deployment_id, context_id, label, title, time_zone, term_start, "
        "term_end, created_at) SELECT c, 1, 1, 'ctx-' || c, 'CS 229-' || c, 'Machine Learning (Fall 2024)', "
        "'America/Los_Angeles', DATE '2024-08-26', DATE '2024-12-13', %(h0)s FROM generate_series(1, %(c)s) c",
        p,
    )
    conn.execute(
        "INSERT INTO course_policies (course_id, auto_close, expected_students, budget_per_student, total_budget, "
        "budget_source, templates, default_template, max_concurrent, max_daily_cost, idle_stop_minutes, "
        "shared_materials, integrity, term_end_actions, updated_at) SELECT c, true, 50, 24, 1200, 'University IT', "
        "%(templates)s::jsonb, 'ml-cpu-student', 1, 5, 240, true, '{}', '{}', %(h0)s FROM generate_series(1, %(c)s) c",
        p,
    )
    conn.execute(
        "INSERT INTO people (id, platform_id, sub, name, given_name, family_name, email, is_test_user, created_at, "
        "updated_at) SELECT p, 1, 'user-' || p, CASE WHEN p > %(n)s THEN 'Instructor ' ELSE 'Student ' END || p, "
        "'', '', 'user' || p || '@university.edu', false, %(h0)s, %(h0)s FROM generate_series(1, %(n)s + %(c)s) p",
        p,
    )
    conn.execute(
        "INSERT INTO enrollments (course_id, person_id, lti_roles, level, status, section, created_at) "
        "SELECT CASE WHEN p > %(n)s THEN p - %(n)s ELSE (p - 1) / 50 + 1 END, p, '{}', "
        "(CASE WHEN p > %(n)s THEN 'owner' ELSE 'student' END)::staff_level, 'active'::enrollment_status, '', %(h0)s "
        "FROM generate_series(1, %(n)s + %(c)s) p",
        p,
    )
    for table, last in (("platforms", 1), ("deployments", 1), ("courses", courses), ("people", n + courses)):
        conn.execute(f"SELECT setval('{table}_id_seq', %s)", (last,))


def _copy(conn: psycopg.Connection, target: str, rows: Iterable[tuple[Any, ...]]) -> int:
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


# --- measuring ----------------------------------------------------------------------------------------


@dataclass
class Counter:
    """SQL statements sent through the engine (before_cursor_execute)."""

    n: int = 0

    def __call__(self, *_: object) -> None:
        self.n += 1


SETTLE_SQL = text("""
WITH moved AS (
    UPDATE workspaces
    SET state = CASE WHEN stop_mode = 'hibernate' THEN 'hibernated' ELSE 'stopped' END::workspace_state,
        state_changed_at = :at
    WHERE state = 'stopping' RETURNING id, state
)
INSERT INTO workspace_events (workspace_id, at, from_state, to_state, actor, reason)
SELECT id, :at, 'stopping', state, 'reconcile', 'AWS reports stopped' FROM moved
""")


def settle(session: Session, at: datetime) -> None:
    """What reconcile does 20 s after the stop jobs ran: the stopped workspaces are stopped (not measured)."""
    session.execute(SETTLE_SQL, {"at": at})
    session.commit()


def measure(url: str, sweeps: int) -> dict[str, Any]:
    """One warm-up sweep at T0, then `sweeps` measured ones a minute apart; figures for each."""
    engine = make_engine(url, pool_pre_ping=False)
    counter = Counter()
    event.listen(engine, "before_cursor_execute", counter)
    session = make_session_factory(engine)()
    runs = []
    try:
        for k in range(sweeps + 1):
            counter.n = 0
            started = time.perf_counter()
            result = run_sweep(session, T0 + timedelta(minutes=k), PRICES)
            session.commit()
            seconds = time.perf_counter() - started
            settle(session, T0 + timedelta(minutes=k, seconds=20))
            kinds = sorted({a.kind for a in result.alerts})
            runs.append(
                {
                    "sweep": k,
                    "seconds": round(seconds, 4),
                    "statements": counter.n,
                    "ledger_rows": result.accrued,
                    "students": result.students,
                    "stops": len(result.stopped),
                    "alerts": len(result.alerts),
                    "alert_kinds": kinds,
                }
            )
    finally:
        session.close()
        engine.dispose()
    measured = runs[1:]
    return {
        "warmup": runs[0],
        "sweeps": measured,
        "median_seconds": round(statistics.median(r["seconds"] for r in measured), 4),
        "statements": sorted({r["statements"] for r in measured}),
        "ledger_rows_per_sweep": statistics.median(r["ledger_rows"] for r in measured),
        "stops_per_sweep": statistics.median(r["stops"] for r in measured),
        "alerts_per_sweep": statistics.median(r["alerts"] for r in measured),
    }


def explain(url: str, at: datetime) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the accrual (rolled back) and of the position queries at `at`."""
    engine = make_engine(url, pool_pre_ping=False)
    accrue = accrual_params(at, PRICES)
    plans = {}
    with engine.connect() as conn:
        positions = {"now": at, "zones": []}  # every zone treated as unknown: the same plan shape
        for name, sql, params in (("accrue", ACCRUE_SQL, accrue), ("positions", POSITIONS_SQL, positions),
                                  ("running", RUNNING_SQL, {})):  # fmt: skip
            conn.execute(text("SET LOCAL jit = off"))  # as run_sweep does
            rows = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql.text), params).scalars().all()
            plans[name] = "\n".join(rows)
            conn.rollback()
    engine.dispose()
    return plans


# --- report -------------------------------------------------------------------------------------------


def verdicts(sizes: dict[int, dict[str, Any]]) -> dict[str, str]:
    """PASS/FAIL against the targets."""
    largest = sizes[max(sizes)]
    counts = {c for figures in sizes.values() for c in figures["statements"]}
    fast = largest["median_seconds"] < TARGET_SECONDS
    return {
        f"under {TARGET_SECONDS:g} s per sweep at {max(sizes):,}": "PASS" if fast else "FAIL",
        "same statement count at every size": "PASS" if len(counts) == 1 else "FAIL",
    }


def report(result: dict[str, Any]) -> None:
    """Print the table and the verdicts."""
    print(f"\nclassroom.services.enforcement.run_sweep + commit: {result['sweeps']} measured sweeps after one warm-up")
    print(f"{'workspaces':>10} {'median s':>9} {'min s':>7} {'max s':>7} {'statements':>12} {'ledger rows':>12} "
          f"{'stops':>6} {'alerts':>7} {'warm-up s':>9}")  # fmt: skip
    for n, f in result["sizes"].items():
        secs = [r["seconds"] for r in f["sweeps"]]
        stmts = "/".join(str(s) for s in f["statements"])
        print(f"{n:>10,} {f['median_seconds']:>9.3f} {min(secs):>7.3f} {max(secs):>7.3f} {stmts:>12} "
              f"{f['ledger_rows_per_sweep']:>12,.0f} {f['stops_per_sweep']:>6.0f} {f['alerts_per_sweep']:>7.0f} "
              f"{f['warmup']['seconds']:>9.3f}")  # fmt: skip
    for name, verdict in result["verdicts"].items():
        print(f"{verdict}: {name}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="live workspaces (x1000)")
    parser.add_argument("--sweeps", type=int, default=5, help="measured sweeps per size (at most 5)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the queries at the largest size")
    args = parser.parse_args(argv)
    if any(n % 1000 for n in args.sizes) or not 1 <= args.sweeps <= 5:
        parser.error("sizes must be multiples of 1,000 and sweeps between 1 and 5 (six batches cross per 1,000)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build, measure and drop a database per size; report; exit 0 only if every target passes."""
    args = parse_args(argv)
    admin = admin_url()
    result: dict[str, Any] = {"sweeps": args.sweeps, "sizes": {}, "loaded": {}, "at": T0.isoformat()}
    for n in sorted(args.sizes):
        with fresh_database(admin, f"cwc_bench_sweep_{os.getpid()}") as url:
            started = time.perf_counter()
            result["loaded"][n] = populate(url, n)
            calibrate(url, n)
            print(f"{n:,} workspaces loaded in {time.perf_counter() - started:.1f} s: {result['loaded'][n]}")
            result["sizes"][n] = measure(url, args.sweeps)
            if args.explain and n == max(args.sizes):
                result["explain"] = explain(url, T0 + timedelta(minutes=args.sweeps + 1))
                for name, plan in result["explain"].items():
                    print(f"\n--- EXPLAIN ANALYZE {name} at {n:,}\n{plan}")
    result["verdicts"] = verdicts(result["sizes"])
    report(result)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    print(f"figures written to {OUT}")
    return 0 if all(v == "PASS" for v in result["verdicts"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
