"""The staff dashboard (`/app/dashboard`) at 50 and 500 students with a week-8 history.

Run: `python -m bench.dashboard [--sizes 50 500] [--runs 20]`.

For each size: a fresh migrated database (`cwc_bench_dashboard_<pid>`, dropped at the end) holding one course,
the CS 229 policy, a head TA, and N students in four sections, each with a week-8 history in the same proportions
at every size: 90 % have a workspace (20 % of those running, 50 % stopped, 30 % hibernated), 40 state events,
80 hourly ledger entries and 56 days of spend each, 200 activity events per workspace, 12 audited workspace
actions per workspace (3 % with two failed starts, 2 % reset this week), help requests (10 % open, 5 % claimed,
30 % resolved), messages for 30 %, eight due dates (one in two days). About 6 % of students are over 90 % of
their budget.

Measured, after two warm-up runs, `--runs` times each:
- service: `load_facts` + `build_rows` + `select_rows` (what the view computes) on a session of its own;
- request: GET /app/dashboard through the Flask test client with a real signed tool token for the head TA
  (the token a launch gives; its check re-reads the enrollment), the first page rendered: every student loaded,
  flagged and sorted ("needs help first"), the first 100 rows shown (classroom.dashboard_rules.PAGE_SIZE);
- last page: the same with `page=` the last one (the rows least in need of help).
A `before_cursor_execute` listener counts SQL statements. Prints median and p95 and the statements per run, with
PASS/FAIL against the targets (request under 150 ms at 500; the same statement count at every size).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bench.services import admin_url, fresh_database, private_redis
from classroom.audit import NewEvent, append_events
from classroom.dashboard_rules import PAGE_SIZE, DashboardQuery, build_rows, select_rows
from classroom.db import make_engine, make_session_factory
from classroom.models import DueDate, DueSource, Enrollment, HelpRequest, Person, StaffMessage, Workspace
from classroom.roles import StaffLevel
from classroom.services.dashboard import due_soon, facts_query, load_facts
from classroom.workspaces.lifecycle import WorkspaceState
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

NOW = datetime.now(UTC).replace(microsecond=0)
WEEKS = 8
TARGET_MS = 150.0
FIRST = ["Emily", "David", "Sophie", "Liam", "Ava", "Noah", "Mia", "Lucas", "Zoe", "Omar", "Priyanka", "Wei"]
LAST = ["Chen", "Kim", "Martin", "Garcia", "Nguyen", "Smith", "Patel", "Okafor", "Rossi", "Novak", "Silva"]


def _people(session: Session, course_id: int, platform_id: int, n: int, rng: random.Random) -> list[int]:
    rows = [
        {"platform_id": platform_id, "sub": f"bench-{i}", "name": f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}",
         "email": f"student{i}@university.edu"}
        for i in range(n)
    ]  # fmt: skip
    ids = list(session.scalars(insert(Person).returning(Person.id), rows))
    session.execute(
        insert(Enrollment),
        [{"course_id": course_id, "person_id": p, "lti_roles": [], "level": StaffLevel.STUDENT,
          "section": f"Section {i % 4 + 1}"} for i, p in enumerate(ids)],
    )  # fmt: skip
    return ids


def _workspaces(session: Session, course_id: int, people: list[int], rng: random.Random) -> list[tuple[int, int]]:
    rows = []
    for i, person in enumerate(people):
        if i % 10 == 9:
            continue  # 10 % never opened a workspace
        r = rng.random()
        state = WorkspaceState.RUNNING if r < 0.2 else WorkspaceState.STOPPED if r < 0.7 else WorkspaceState.HIBERNATED
        since = NOW - timedelta(minutes=rng.randint(5, 600))
        rows.append({"course_id": course_id, "person_id": person, "link_key": "template:ml-cpu-student",
                     "template_id": "ml-cpu-student", "instance_type": "t3.medium", "volume_gb": 30,
                     "region": "us-east-1", "state": state, "instance_id": f"i-{person:017x}",
                     "state_changed_at": since, "created_at": NOW - timedelta(weeks=WEEKS),
                     "last_activity_at": since - timedelta(days=state is not WorkspaceState.RUNNING)})  # fmt: skip
    ids = list(session.scalars(insert(Workspace).returning(Workspace.id), rows))
    return list(zip(ids, [r["person_id"] for r in rows], strict=True))


HISTORY_SQL = [
    # 40 state events per workspace over eight weeks
    """INSERT INTO workspace_events (workspace_id, at, from_state, to_state, actor, reason)
       SELECT w.id, :now - (g * interval '33 hours'), 'running', 'stopped', 'student', 'bench history'
       FROM workspaces w, generate_series(1, 40) g WHERE w.course_id = :course""",
    # 80 hourly ledger entries per workspace
    """INSERT INTO ledger_entries (workspace_id, course_id, person_id, period_start, period_end, running_seconds,
                                   compute, storage, created_at)
       SELECT w.id, w.course_id, w.person_id, :now - (g * interval '16 hours'),
              :now - (g * interval '16 hours') + interval '1 hour', 3600, 0.0416, 0.0033, :now
       FROM workspaces w, generate_series(1, 80) g WHERE w.course_id = :course""",
    # 200 activity events per workspace (file changes, logins), newest a few hours to days ago
    """INSERT INTO activity_events (workspace_id, event_id, kind, at, details, received_at)
       SELECT w.id, 'e' || g, CASE WHEN g % 10 = 0 THEN 'ssh_login' ELSE 'file_changed' END,
              w.last_activity_at - (g * interval '6 hours'), '{"path": "homework/hw3/train.py"}'::jsonb, :now
       FROM workspaces w, generate_series(1, 200) g WHERE w.course_id = :course""",
]
SPEND_SQL = """
INSERT INTO spend_daily (course_id, person_id, day, compute, storage, running_seconds, transfer)
SELECT :course, p.person_id, CAST(:today AS date) - g, p.daily * 0.9, p.daily * 0.1, 7200, 0
FROM unnest(CAST(:people AS int[]), CAST(:daily AS numeric[])) AS p(person_id, daily), generate_series(0, 55) g
"""


def _audit(session: Session, course_id: int, workspaces: list[tuple[int, int]], rng: random.Random) -> None:
    events = []
    for ws_id, person in workspaces:
        for k in range(12):
            action = "workspace.start_requested" if k % 2 else "workspace.stop_requested"
            events.append(NewEvent(action, person, course_id, str(ws_id), {"by": "student"}))
        r = rng.random()
        if r < 0.03:
            events += [NewEvent("workspace.start_failed", None, course_id, str(ws_id), {"error": "bench"})] * 2
        elif r < 0.05:
            events.append(NewEvent("workspace.reset", None, course_id, str(ws_id), {"person_id": person}))
    for i in range(0, len(events), 2000):
        append_events(session, events[i : i + 2000])


def _help_and_messages(session: Session, course_id: int, people: list[int], staff: int) -> None:
    requests, messages = [], []
    for i, person in enumerate(people):
        r = i % 20
        status = "open" if r < 2 else "claimed" if r < 3 else "resolved" if r < 9 else None
        if status:
            created = NOW - timedelta(hours=1 + i % 30)
            requests.append({"course_id": course_id, "person_id": person, "message": "My loss is NaN", "status": status,
                             "file_path": "homework/hw3/train.py", "line": 42, "created_at": created,
                             "claimed_by": staff if status != "open" else None,
                             "claimed_at": created + timedelta(minutes=5) if status != "open" else None,
                             "resolved_by": staff if status == "resolved" else None,
                             "resolved_at": created + timedelta(minutes=12) if status == "resolved" else None,
                             "resolution_note": "batch size" if status == "resolved" else ""})  # fmt: skip
        if i % 10 < 3:
            for k in range(2):
                messages.append({"course_id": course_id, "student_id": person, "author_id": staff,
                                 "from_student": False, "client_key": f"b{i}-{k}", "subject": "Batch size",
                                 "body": "Try 64", "file_path": "", "attachment_name": "", "attachment_type": "",
                                 "attachment_size": 0, "created_at": NOW - timedelta(days=k),
                                 "read_at": NOW if k else None})  # fmt: skip
    session.execute(insert(HelpRequest), requests)
    if messages:
        session.execute(insert(StaffMessage), messages)


def seed(session: Session, n: int, rng: random.Random) -> tuple[int, int, int]:
    """A course with n students and a week-8 history; returns (course id, head TA id, deployment pk)."""
    course = make_course(session, time_zone="America/Los_Angeles", term_start=date.today() - timedelta(weeks=WEEKS),
                         term_end=date.today() + timedelta(weeks=7))  # fmt: skip
    make_policy(session, course)
    staff = make_person(session, course, level=StaffLevel.HEAD_TA, name="Alex Thompson")
    people = _people(session, course.id, course.platform_id, n, rng)
    workspaces = _workspaces(session, course.id, people, rng)
    for sql in HISTORY_SQL:
        session.execute(text(sql), {"now": NOW, "course": course.id})
    cap = Decimal(24)
    daily = [cap * Decimal(str(0.92 + rng.random() * 0.1 if i % 16 == 0 else rng.random() * 0.8)) / 56
             for i in range(n)]  # fmt: skip
    session.execute(text(SPEND_SQL), {"course": course.id, "today": date.today(), "people": people, "daily": daily})
    _audit(session, course.id, workspaces, rng)
    _help_and_messages(session, course.id, people, staff.id)
    dues = [NOW + timedelta(days=2)] + [NOW - timedelta(weeks=w) for w in range(1, 8)]
    session.execute(insert(DueDate), [{"course_id": course.id, "source": DueSource.LAUNCH_CUSTOM, "key": f"hw{i}",
                                       "title": f"HW {i}", "due_at": d} for i, d in enumerate(dues)])  # fmt: skip
    session.commit()
    session.execute(text("ANALYZE"))  # as autovacuum would after such a load: the planner sees the real sizes
    session.commit()
    return course.id, staff.id, course.deployment_id


class Counter:
    """Counts statements on an engine."""

    def __init__(self, engine: Engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.n += 1


def measure(fn: Callable[[], None], counter: Counter, runs: int) -> dict[str, float]:
    """Two warm-ups, then `runs` timed calls: median, p95 (ms) and statements per call."""
    for _ in range(2):
        fn()
    times, counts = [], []
    for _ in range(runs):
        before = counter.n
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        counts.append(counter.n - before)
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
    return {"median_ms": statistics.median(times), "p95_ms": p95, "statements": max(counts), "min_st": min(counts)}


def run(url: str, redis_url: str, n: int, runs: int, *, explain: bool = False) -> dict[str, Any]:
    """Seed one size and measure the service and the request."""
    from config.settings import Settings
    from lti_app import create_app
    from lti_app.auth import issue_token

    engine = make_engine(url)
    factory = make_session_factory(engine)
    t0 = time.perf_counter()
    with factory() as session:
        course_id, staff_id, deployment = seed(session, n, random.Random(229))
    seeded = time.perf_counter() - t0
    counter = Counter(engine)

    def service() -> None:
        with factory() as session:
            now = datetime.now(UTC)
            rows = build_rows(load_facts(session, course_id, now), now, due_soon(session, course_id, now))
            select_rows(rows, DashboardQuery(), now)

    svc = measure(service, counter, runs)
    if explain:
        with engine.connect() as conn:
            compiled = facts_query(course_id, datetime.now(UTC)).compile(engine, compile_kwargs={"literal_binds": True})
            for (line,) in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")):
                print(line)
    settings = Settings(env="test", secret_key="bench-" + "x" * 40, base_url="http://localhost", database_url=url,
                        redis_url=redis_url, log_json=False, log_level="WARNING")  # fmt: skip
    app = create_app(settings)
    with app.app_context():
        token = issue_token(launch_id="bench", deployment_pk=deployment, person_id=staff_id, course_id=course_id,
                            level="head_ta")  # fmt: skip
    app_counter = Counter(app.extensions["cwc"].engine)
    client = app.test_client()
    size = {"bytes": 0}

    def request(page: int = 1) -> None:
        resp = client.get("/app/dashboard", query_string={"t": token, "page": page})
        assert resp.status_code == 200, resp.status_code
        assert n <= PAGE_SIZE or f"of {n} ·" in resp.get_data(as_text=True)  # every student counted, one page shown
        size["bytes"] = len(resp.data)

    last = measure(lambda: request(-(-n // PAGE_SIZE)), app_counter, runs)
    req = measure(request, app_counter, runs)
    app.extensions["cwc"].engine.dispose()
    engine.dispose()
    return {
        "students": n,
        "seed_s": seeded,
        "service": svc,
        "request": req,
        "last": last,
        "page_kb": size["bytes"] / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the main query at each size")
    args = parser.parse_args(argv)
    admin = admin_url()
    results = []
    with private_redis() as redis_url:
        for n in args.sizes:
            with fresh_database(admin, f"cwc_bench_dashboard_{os.getpid()}") as url:
                results.append(run(url, redis_url, n, args.runs, explain=args.explain))
    print(f"{'students':>8} {'service ms (p50/p95)':>22} {'stmts':>6} {'request ms (p50/p95)':>22} {'stmts':>6} "
          f"{'page KiB':>9} {'last page ms (p50/p95)':>24}")  # fmt: skip
    for r in results:
        s, q, z = r["service"], r["request"], r["last"]
        print(f"{r['students']:>8} {s['median_ms']:>11.1f} / {s['p95_ms']:<8.1f} {s['statements']:>6} "
              f"{q['median_ms']:>11.1f} / {q['p95_ms']:<8.1f} {q['statements']:>6} {r['page_kb']:>9.0f} "
              f"{z['median_ms']:>13.1f} / {z['p95_ms']:<8.1f}")  # fmt: skip
    largest = max(results, key=lambda r: r["students"])
    fast = largest["request"]["median_ms"] < TARGET_MS
    same = (
        len({r["request"]["statements"] for r in results}) == 1
        and len({r["service"]["statements"] for r in results}) == 1
    )
    print(f"{'PASS' if fast else 'FAIL'}: request median {largest['request']['median_ms']:.1f} ms at "
          f"{largest['students']} students (target < {TARGET_MS:.0f} ms)")  # fmt: skip
    per_request = sorted({r["request"]["statements"] for r in results})
    per_call = sorted({r["service"]["statements"] for r in results})
    print(f"{'PASS' if same else 'FAIL'}: statements per request {per_request} and per service call {per_call} "
          f"at sizes {args.sizes} (target: the same)")  # fmt: skip
    return 0 if fast and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
