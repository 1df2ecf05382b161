"""A semester of money: N students x 15 weeks on a controlled clock, the ledger against the simulated account.

Run: `python -m bench.semester [--students 50 500] [--seed 229]`.

For each size: a fresh migrated database (`cwc_bench_semester_<pid>`, dropped at the end), the CS 229 policy
($24 a student, a course total of $24 x the students expected), and behaviour drawn from a seeded RNG: weekly
assignment visits (one workspace per student, reused by every assignment link, as the course default will be),
careless students who forget to stop (the idle limit stops them), GPU attempts (refused), heavy users who run
day and night (the cap stops them), a final-project disk (50 GB, t3.large) in weeks 12-15, and late enrollees
from week 3. Every decision and state change goes through the tool's own code: `decide_launch`, the workspace
services and the minute's `run_sweep` (accrual, enforcement, alerts). Sweeps run every 30 minutes while
something runs (daily otherwise), a minute after a start, and at every minute in which the planner's lines
could be crossed, computed from the positions after each sweep, so no stop is later than the production minute.

The simulated account records what AWS would see: each instance's running interval (from `running` to
`stopped`, the stop's minute included, as hibernation is billed) and each volume's life. Its cost is recomputed
here from AWS list prices written out in this file (not config/prices.json) and compared with the ledger.
Prints, per size: per-student max overshoot above the cap, course total against the budget, account cost vs
ledger (difference 0 within rounding), refusals by reason, stops by reason, and run time.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import time_machine
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bench.services import admin_url, fresh_database
from classroom.db import make_engine, make_session_factory
from classroom.models import Course, CoursePolicy, LedgerEntry, Workspace, WorkspaceEvent
from classroom.services.budgets import decide_launch
from classroom.services.enforcement import load_positions, run_sweep
from classroom.services.workspaces import request_start, request_stop, request_workspace, set_state
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S = WorkspaceState
PRICES, CATALOG = load_prices().region("us-east-1"), load_catalog()
TERM_START, WEEKS = date(2024, 8, 26), 15
START = datetime(2024, 8, 26, 7, 0, tzinfo=UTC)
END = datetime.combine(TERM_START + timedelta(weeks=WEEKS), datetime.min.time(), UTC)
BOOT = STOP = timedelta(seconds=60)  # AWS: pending -> running, stopping -> stopped
# AWS us-east-1 list prices, on purpose not read from config/prices.json: the account is costed independently
LIST_HOURLY = {"t3.medium": Decimal("0.0416"), "t3.large": Decimal("0.0832"), "p3.2xlarge": Decimal("3.06")}
IPV4_HOURLY, GP3_GB_MONTH = Decimal("0.005"), Decimal("0.08")
CPU, FINAL, GPU = "ml-cpu-student", "ml-final-project", "gpu-ml-workstation"


@dataclass
class Account:
    """The simulated AWS account's resource history: running intervals and volume lives, per workspace."""

    running: dict[int, list[list[datetime | None]]] = field(default_factory=dict)
    volumes: dict[int, tuple[datetime, int, str]] = field(default_factory=dict)  # ws -> (created, GB, type)

    def cost(self, end: datetime) -> Decimal:
        """What AWS would bill up to `end`: instance hours with their public IPv4, gp3 GB-months."""
        total = Decimal(0)
        for ws, (created, gb, itype) in self.volumes.items():
            total += GP3_GB_MONTH * gb * _hours(created, end) / 730
            for start, stop in self.running.get(ws, []):
                total += (LIST_HOURLY[itype] + IPV4_HOURLY) * _hours(start, stop or end)  # type: ignore[arg-type]
        return total


def _hours(a: datetime, b: datetime) -> Decimal:
    return Decimal((b - a) // timedelta(microseconds=1)) / Decimal(3_600_000_000)


@dataclass
class World:
    """The course, its students' workspaces, the clock, the account and what happened."""

    session: Session
    course: Course
    clock: object
    account: Account = field(default_factory=Account)
    workspaces: dict[tuple[int, str], int] = field(default_factory=dict)  # (person, template) -> workspace
    working: dict[int, datetime] = field(default_factory=dict)  # workspace -> active until
    queue: list[tuple[datetime, int, Callable[[], None]]] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    sweeps: int = 0
    started: bool = False  # a workspace started since the last sweep: sweep within the minute
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), action))

    def now(self) -> datetime:
        return datetime.now(UTC)


def _ws(world: World, ws_id: int) -> Workspace:
    ws = world.session.get(Workspace, ws_id)
    assert ws is not None
    return ws


def visit(world: World, person: int, template: str, hours: float, *, forgets: bool) -> None:
    """A student opens the workspace (new or stopped), works for `hours`, then stops it unless they forget."""
    s, now = world.session, world.now()
    key = (person, template)
    existing = _ws(world, world.workspaces[key]) if key in world.workspaces else None
    if existing is not None and existing.state not in (S.STOPPED, S.HIBERNATED):
        return  # still running or moving: the visit joins it
    decision = decide_launch(s, world.course, person, template, catalog=CATALOG, prices=PRICES,
                             starting=existing is not None)  # fmt: skip
    if not decision.allowed:
        world.refusals[decision.code] += 1
        s.commit()
        return
    if existing is None:
        t = CATALOG.get(template)
        assert t is not None
        existing, _ = request_workspace(s, course_id=world.course.id, person_id=person, link_key=template,
                                        link_title=template, template=t, region="us-east-1")  # fmt: skip
        world.workspaces[key] = existing.id
        set_state(s, existing, S.PROVISIONING, actor="job")
        existing.instance_id = f"i-sim{existing.id:013x}"  # launched: a wished stop is then claimed and carried out
        world.account.volumes[existing.id] = (now, existing.volume_gb, existing.instance_type)
    else:
        request_start(s, existing, actor_person_id=person, actor="student")
    s.commit()
    ws_id, until = existing.id, now + timedelta(hours=hours)
    world.working[ws_id], world.started = until, True
    world.at(now + BOOT, lambda: _running(world, ws_id))
    if not forgets:
        world.at(until, lambda: _stop(world, ws_id, "student"))


def _running(world: World, ws_id: int) -> None:
    ws = _ws(world, ws_id)
    if ws.state in (S.PROVISIONING, S.STARTING):
        set_state(world.session, ws, S.RUNNING, actor="reconcile")
        ws.last_activity_at = world.now()
        world.account.running.setdefault(ws_id, []).append([world.now(), None])
    world.session.commit()


def _stop(world: World, ws_id: int, actor: str) -> None:
    ws = _ws(world, ws_id)
    if ws.state is S.RUNNING:
        request_stop(world.session, ws, actor_person_id=None, actor=actor, reason="done", hibernate=True)
        world.session.commit()
    if ws.state is S.STOPPING:
        world.at(world.now() + STOP, lambda: _stopped(world, ws_id))


def _stopped(world: World, ws_id: int) -> None:
    ws = _ws(world, ws_id)
    if ws.state is S.STOPPING:
        set_state(world.session, ws, S.HIBERNATED, actor="reconcile")
        world.account.running[ws_id][-1][1] = world.now()
    world.session.commit()


def sweep(world: World) -> timedelta:
    """Agents report activity, the minute's sweep runs, its stops go to the account; returns the next gap."""
    s, now = world.session, world.now()
    active = [w for w, until in world.working.items() if until >= now]
    if active:
        s.execute(update(Workspace).where(Workspace.id.in_(active)).values(last_activity_at=now))
    result = run_sweep(s, now, PRICES)
    s.commit()
    world.sweeps += 1
    for ws_id in result.stopped:
        world.working.pop(ws_id, None)
        world.at(now + STOP, lambda w=ws_id: _stopped(world, w))
    return _next_gap(world, now)


def _next_gap(world: World, now: datetime) -> timedelta:
    """Half an hour while anything runs (a day otherwise: nothing but disks accrue, and accrual is exact over any
    period), or the minute before a line could be crossed."""
    gap = timedelta(days=1)
    for p in load_positions(world.session, now, PRICES):
        if not p.running:
            continue
        gap = min(gap, timedelta(minutes=30))
        per_minute = sum((w.hourly for w in p.running), Decimal(0)) / 60
        for slack in (p.cap - p.spent - p.storage_reserve, p.daily_cap - p.spent_today):
            gap = min(gap, timedelta(minutes=max(1, int(slack / per_minute) - 1)))
        for w in p.running:
            idle_at = w.last_active + timedelta(minutes=w.idle_minutes)
            gap = min(gap, max(timedelta(minutes=1), idle_at - now))
    return gap


def behaviour(world: World, rng: random.Random, people: list[int], late: set[int]) -> None:
    """Schedule the semester's visits: weekly work, forgotten stops, GPU attempts, heavy users, final project."""
    for person in people:
        careless, heavy = rng.random() < 0.2, rng.random() < 0.05
        for week in range(3 if person in late else 0, WEEKS):
            sunday = START + timedelta(weeks=week, days=6, hours=rng.choice((14, 15, 16)) + 7)
            template = FINAL if week >= 11 and rng.random() < 0.5 else CPU
            hours = 24 * 6.0 if heavy else rng.uniform(1.5, 4.0)
            forgets = careless and rng.random() < 0.3
            world.at(sunday, lambda p=person, t=template, h=hours, f=forgets: visit(world, p, t, h, forgets=f))
            if rng.random() < 0.4:
                wednesday = sunday - timedelta(days=4)
                short = rng.uniform(1, 2.5)
                world.at(wednesday, lambda p=person, h=short: visit(world, p, CPU, h, forgets=False))
            if rng.random() < 0.03:
                world.at(sunday + timedelta(hours=1), lambda p=person: visit(world, p, GPU, 3, forgets=True))


def setup(session: Session, n: int, rng: random.Random) -> tuple[Course, list[int], set[int]]:
    """The course, its students (about a tenth late enrollees) and its policy: the IT allocation is $24 for each
    student expected before the term, so the late ones take the course past it."""
    course = make_course(session, time_zone="America/Los_Angeles", term_start=TERM_START,
                         term_end=TERM_START + timedelta(weeks=WEEKS, days=-1))  # fmt: skip
    make_person(session, course, name="Jennifer Martinez", level="owner")
    people = [make_person(session, course, name=f"Student {i}").id for i in range(n)]
    late = {p for p in people if rng.random() < 0.1}
    templates = {CPU: "approved", FINAL: "approved", GPU: "blocked"}
    expected = n - len(late)
    make_policy(session, course, total_budget=Decimal(24 * expected), expected_students=expected, templates=templates)
    session.commit()
    return course, people, late


def run(url: str, n: int, seed: int) -> dict[str, object]:
    """Simulate one semester; return the figures."""
    engine = make_engine(url)
    rng = random.Random(seed)
    started = time.perf_counter()
    with make_session_factory(engine)() as session, time_machine.travel(START, tick=False) as clock:
        course, people, late = setup(session, n, rng)
        world = World(session, course, clock)
        behaviour(world, rng, people, late)
        next_sweep = START
        while min(next_sweep, world.queue[0][0] if world.queue else END) < END:
            if world.queue and world.queue[0][0] <= next_sweep:
                when, _, action = heapq.heappop(world.queue)
                clock.move_to(when)
                action()
                if world.started:  # as in production, the next minute's sweep sees what just started
                    next_sweep, world.started = min(next_sweep, when + timedelta(minutes=1)), False
            else:
                clock.move_to(next_sweep)
                next_sweep = next_sweep + sweep(world)
        clock.move_to(END)
        run_sweep(session, END, PRICES)
        session.commit()
        figures = _figures(session, world, people)
    engine.dispose()
    return {**figures, "students": n, "seconds": round(time.perf_counter() - started, 1)}


def _figures(session: Session, world: World, people: list[int]) -> dict[str, object]:
    spent = LedgerEntry.compute + LedgerEntry.storage
    per = dict(session.execute(select(LedgerEntry.person_id, func.sum(spent)).group_by(LedgerEntry.person_id)).all())
    ledger = sum(per.values(), Decimal(0))
    account = world.account.cost(END)
    cap = Decimal(24)
    return {
        "max_overshoot": max((per.get(p, Decimal(0)) - cap for p in people), default=Decimal(0)),
        "over_cap": sum(1 for p in people if per.get(p, Decimal(0)) > cap),
        "course_total": ledger,
        "budget": world.session.get(CoursePolicy, world.course.id).total_budget,  # type: ignore[union-attr]
        "account_cost": account,
        "difference": account - ledger,
        "refusals": dict(world.refusals),
        "stops": dict(
            session.execute(
                select(WorkspaceEvent.reason, func.count())
                .where(WorkspaceEvent.actor == "enforcement")
                .group_by(WorkspaceEvent.reason)
            ).all()
        ),
        "sweeps": world.sweeps,
    }


def report(r: dict[str, object]) -> None:
    """Print one size's figures."""

    def usd(key: str, places: str = "0.01") -> str:
        return "$" + str(Decimal(str(r[key])).quantize(Decimal(places)))

    print(
        f"\n{r['students']} students x {WEEKS} weeks ({r['sweeps']} sweeps, {r['seconds']} s)\n"
        f"  per-student max overshoot above the cap: {usd('max_overshoot', '0.0001')}"
        f" ({r['over_cap']} students above it)\n"
        f"  course total {usd('course_total')} of a {usd('budget')} budget\n"
        f"  account (AWS list prices) {usd('account_cost')} vs ledger {usd('course_total')}:"
        f" difference {Decimal(str(r['difference'])):.2E}\n"
        f"  refusals {r['refusals']}\n  enforced stops {r['stops']}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run each size on a fresh database; exit 1 if the ledger and the account differ by a cent or more."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--seed", type=int, default=229)
    args = parser.parse_args(argv)
    admin, ok = admin_url(), True
    for n in args.students:
        with fresh_database(admin, f"cwc_bench_semester_{os.getpid()}") as url:
            r = run(url, n, args.seed)
        report(r)
        ok = ok and abs(Decimal(r["difference"])) < Decimal("0.01")  # type: ignore[arg-type]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
