"""A semester of money: N students x 15 weeks and past the disk grace period, the ledger against simulated AWS.

Run: `python -m bench.semester [--students 50 500] [--seed 229] [--redis-db 13]`.

For each size: a fresh migrated database (`cwc_bench_semester_<pid>`, dropped at the end), Redis DB `--redis-db`
(flushed before and after), a moto server on loopback behind the production `AwsBackend`, and the semester
harness of the tests (tests/support/semester.py): a controlled clock, the launch policy and `open_workspace` as
the Start button calls them, the jobs run in-process after each commit, reconcile against moto, the agents'
heartbeats with the token from their user data, the minute's sweep. The CS 229 policy: $24 a student, a course
total of $24 x the students enrolled before the term. Behaviour from a seeded RNG: each week's visit opens THAT
WEEK'S ASSIGNMENT LINK (hw1..hw10, then the final project; one workspace per student, each link a folder in it);
careless students forget to stop (the idle limit stops them), a few run day and night (the cap stops them), a
few try the GPU template (blocked), about half use the final-project template (50 GB, t3.large) from week 12,
and about a tenth enrol late (weeks 3-6) through the LTI launch service. At term end the product's term-end pass
(`run_term_end`) stops everything and marks every disk to end; the retirement job (`retire_workspace`, queued by
the daily pass as `retire_due` does) archives each home to S3 and deletes the disk after the course's grace
period. The hourly usage booking (`book_course_usage`) books archives, snapshots and EFS as course lines. The
run ends two days after the grace period.

The AWS side is recomputed INDEPENDENTLY from the simulated account: after every tick the bench reads moto's own
account state in memory (the moto server runs in this process; no API call, so the tool's calls never wait behind
the bench's): every instance carrying the tool's cost-allocation tag (state transitions as observed), every volume
(size, type, creation time; gone = deleted at that tick), every snapshot and every S3 object under the courses'
prefix (size, last modified), and costs that history at AWS list prices written out in this file (not
config/prices.json). Prints, per size: per-student max overshoot above the cap, course total against the budget
and over-allocation, account cost vs ledger (student ledger + course lines) per kind, refusals, enforced stops by
reason, the tool's own calls to simulated AWS by operation, and run time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import requests
import time_machine
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.s3.models import s3_backends
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.provision_storm import Ec2Counter, moto_server
from bench.services import admin_url, fresh_database, redis_server, with_db
from classroom.db import make_engine, make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.jobs.names import RETIRE_WORKSPACE
from classroom.models import BudgetGrant, Course, CourseCharge, CoursePolicy, LedgerEntry, Workspace, WorkspaceEvent
from classroom.roles import StaffLevel
from classroom.services.course_money import course_positions
from classroom.services.reports import course_report
from classroom.services.workspaces import Job
from classroom.workspaces.lifecycle import ENDED
from config.prices import load_prices
from config.settings import Settings
from provisioning.backend import MANAGED_BY
from provisioning.factory import backend_from_settings
from provisioning.simulated import SIMULATED_IMAGE_PREFIX, seed_simulated_aws
from provisioning.term_end import run_term_end, term_end_instant
from provisioning.usage import book_course_usage
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person
from tests.support.moto_amis import use_default_amis_only
from tests.support.moto_tags import index_tag_lookups
from tests.support.semester import Semester, Student, Visit

PRICES = load_prices().region("us-east-1")
TZ = ZoneInfo("America/Los_Angeles")
TERM_START, WEEKS, GRACE_DAYS = date(2024, 8, 26), 15, 14
TERM_END = TERM_START + timedelta(weeks=WEEKS, days=-1)
CPU, FINAL, GPU = "ml-cpu-student", "ml-final-project", "gpu-ml-workstation"
LINKS = [f"hw{n}" for n in range(1, 11)] + ["final-project"] * (WEEKS - 10)  # the link each term week opens
# AWS us-east-1 list prices, on purpose not read from config/prices.json: the account is costed independently
LIST_HOURLY = {"t3.medium": Decimal("0.0416"), "t3.large": Decimal("0.0832"), "p3.2xlarge": Decimal("3.06")}
IPV4_HOURLY = Decimal("0.005")
GB_MONTH = {"gp3": Decimal("0.08"), "snapshot": Decimal("0.05"), "s3": Decimal("0.023")}
HOURS_PER_MONTH, GIB = Decimal(730), Decimal(1024**3)
MANAGED_TAG, PARTITION = "cwc:managed-by", "global"


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A course-time instant, in UTC."""
    return datetime.combine(day, datetime.min.time().replace(hour=hour, minute=minute), TZ).astimezone(UTC)


def _aware(at: datetime) -> datetime:
    """moto keeps naive UTC times."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _instances(ec2) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    return [(i.id, i) for r in list(ec2.reservations.values()) for i in list(r.instances)]


def _ours(ec2, resources: list[tuple[str, object]]) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """The resources carrying the tool's cost-allocation tag (not moto's seed images)."""
    return [(rid, r) for rid, r in resources if ec2.tags.get(rid, {}).get(MANAGED_TAG) == MANAGED_BY]


def _hours(a: datetime, b: datetime) -> Decimal:
    return Decimal(max(0, (b - a) // timedelta(microseconds=1))) / Decimal(3_600_000_000)


@dataclass
class Account:
    """What the simulated account showed at each tick: instance states, volumes, snapshots and S3 objects."""

    running: dict[str, list[list[datetime | None]]] = field(default_factory=dict)  # instance -> [start, end]
    itype: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, list] = field(default_factory=dict)  # id -> [created, GiB, type, gone or None]
    snapshots: dict[str, list] = field(default_factory=dict)  # id -> [started, GiB, gone or None]
    objects: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # key -> (written, bytes)
    describes: int = 0

    def observe(self, backend, now: datetime, *, stored: bool = True) -> None:  # type: ignore[no-untyped-def]
        """Look at the account's instances and volumes (and, if `stored`, its snapshots and S3 archives) and note
        what changed since the last look."""
        ec2 = ec2_backends[DEFAULT_ACCOUNT_ID][backend.region]
        self.describes += 1
        for iid, i in _ours(ec2, _instances(ec2)):
            on = i.state in ("running", "stopping")
            self.itype[iid] = i.instance_type
            spans = self.running.setdefault(iid, [])
            if on and (not spans or spans[-1][1] is not None):
                spans.append([now, None])
            elif not on and spans and spans[-1][1] is None:
                spans[-1][1] = now
        seen = set()
        for vid, v in _ours(ec2, list(ec2.volumes.items())):
            seen.add(vid)
            self.volumes.setdefault(vid, [_aware(v.create_time), v.size, v.volume_type, None])
        for vid, row in self.volumes.items():
            if vid not in seen and row[3] is None:
                row[3] = now
        if stored:
            self.observe_stored(backend, now)

    def observe_stored(self, backend, now: datetime) -> None:  # type: ignore[no-untyped-def]
        """Snapshots (start time; gone = deleted now) and S3 archive objects (last modified, size)."""
        ec2 = ec2_backends[DEFAULT_ACCOUNT_ID][backend.region]
        seen = set()
        for sid, snap in _ours(ec2, list(ec2.snapshots.items())):
            seen.add(sid)
            self.snapshots.setdefault(sid, [_aware(snap.start_time), snap.volume.size, None])
        for sid, row in self.snapshots.items():
            if sid not in seen and row[2] is None:
                row[2] = now
        bucket = s3_backends[DEFAULT_ACCOUNT_ID][PARTITION].buckets[backend.bucket]
        for key, obj in list(bucket.keys.items()):
            if key.startswith("courses/") and "/archives/" in key:
                last = obj[-1] if isinstance(obj, list) else obj  # the current version
                self.objects[key] = (_aware(last.last_modified), last.size)

    def cost(self, end: datetime) -> dict[str, Decimal]:
        """What AWS would bill up to `end`, by kind, from the observed history at list prices."""
        compute = sum(
            ((LIST_HOURLY[self.itype[i]] + IPV4_HOURLY) * _hours(a, b or end) for i, s in self.running.items()
             for a, b in s),
            Decimal(0),
        )  # fmt: skip
        ebs = sum(
            (GB_MONTH[t] * gb * _hours(c, g or end) / HOURS_PER_MONTH for c, gb, t, g in self.volumes.values()),
            Decimal(0),
        )
        snaps = sum(
            (GB_MONTH["snapshot"] * gb * _hours(c, g or end) / HOURS_PER_MONTH for c, gb, g in self.snapshots.values()),
            Decimal(0),
        )
        s3 = sum(
            (GB_MONTH["s3"] * Decimal(n) / GIB * _hours(w, end) / HOURS_PER_MONTH for w, n in self.objects.values()),
            Decimal(0),
        )
        return {"compute": compute, "storage": ebs, "snapshot": snaps, "archive": s3}


class BenchSemester(Semester):
    """The tests' semester, with the account described after every tick and the hourly usage booking."""

    account: Account
    booked: date | None = None
    began: float = 0.0  # perf_counter at the first tick, for the weekly progress line

    def tick(self):  # type: ignore[no-untyped-def]
        positions = super().tick()
        day = self.now.date()
        if day != self.booked:  # the hourly job, daily here: a line runs from the last booking, so fewer runs
            book_course_usage(self.session, self.backend, self.now, self.prices)  # book the same total
            if self.booked is None:
                self.began = time.perf_counter()
            elif (day - TERM_START).days // 7 != (self.booked - TERM_START).days // 7:  # progress, once a week
                print(f"  week {(day - TERM_START).days // 7}: {self.record.ticks} ticks,"
                      f" {time.perf_counter() - self.began:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
            self.booked = day
        self.account.observe(self.backend, self.now)  # in memory: no call the tool's own calls wait behind
        return positions


def behaviour(sim: Semester, rng: random.Random, students: list[Student], late: dict[int, int]) -> dict[str, int]:
    """Schedule the semester's visits on the weekly links; late enrollees join by launching their first link."""
    kinds: Counter[str] = Counter()
    for i, s in enumerate(students):
        careless, heavy, finalist = rng.random() < 0.2, rng.random() < 0.05, rng.random() < 0.5
        first = late.get(i, 0)
        if i in late:
            sim.at(local(TERM_START + timedelta(weeks=first), 9), lambda db, s=s, w=first: sim.join(db, s, LINKS[w]))  # type: ignore[misc]
            kinds["late"] += 1
        kinds["careless"] += careless
        kinds["heavy"] += heavy
        for week in range(first, WEEKS):
            sunday = TERM_START + timedelta(weeks=week, days=6)
            template = FINAL if week >= 11 and finalist else CPU
            start = local(sunday, rng.choice((13, 14, 15)), rng.choice((0, 20, 40)))
            hours = timedelta(days=6) if heavy else timedelta(minutes=rng.randint(90, 240))
            forgets = careless and rng.random() < 0.3
            sim.visit(Visit(s, LINKS[week], template, start, start + hours, None if forgets else start + hours))
            kinds["forgotten"] += forgets
            if rng.random() < 0.4:
                wednesday = start - timedelta(days=4, hours=-5)
                until = wednesday + timedelta(minutes=rng.randint(60, 150))
                sim.visit(Visit(s, LINKS[week], CPU, wednesday, until, until))
            if rng.random() < 0.03:
                sim.at(start + timedelta(hours=1), lambda db, s=s: sim.open(db, s, "gpu-fun", GPU))  # type: ignore[misc]
                kinds["gpu_attempts"] += 1
    return dict(kinds)


def after_term(sim: Semester, end: datetime) -> None:
    """Term end (the product's pass), then the daily retirement pass until the grace period is over."""

    def term_end(db: Session) -> None:
        result = run_term_end(db, sim.now)
        db.commit()
        sim.run_jobs(result.jobs)

    def retire(db: Session) -> None:  # retire_due's queueing, the jobs run in-process
        live = db.scalars(
            select(Workspace.id).where(Workspace.retire_after.is_not(None), Workspace.state.not_in(ENDED))
        )
        sim.run_jobs([Job(RETIRE_WORKSPACE, w) for w in live])

    sim.at(end + timedelta(seconds=1), term_end)
    for day in range(1, GRACE_DAYS + 3):
        sim.at(end + timedelta(days=day, hours=1), retire)


def run(url: str, redis_at: str, moto_url: str, n: int, seed: int) -> dict[str, object]:
    """Simulate one semester and its grace period; return the figures."""
    # The simulated clock stands still within a tick, so the production limiter's waits on mutating EC2 calls
    # (5 a second) would simulate nothing and only add wall time: at 500 students the class's Starts and Stops
    # kept the student threads waiting on it most of the run (py-spy). Every call still goes through it.
    settings = Settings(env="test", secret_key="bench-" + "x" * 40, database_url=url, redis_url=redis_at,
                        aws_endpoint_url=moto_url, image_parameter_prefix=SIMULATED_IMAGE_PREFIX, log_json=False,
                        log_level="WARNING", aws_mutating_calls_per_s=10_000)  # fmt: skip
    requests.post(f"{moto_url}/moto-api/reset", timeout=60).raise_for_status()
    redis = Redis.from_url(redis_at)
    redis.flushdb()
    backend = backend_from_settings(settings, redis)
    seed_simulated_aws(backend)
    calls = Ec2Counter()  # the tool's own calls to simulated AWS, by operation, and their time on the wire
    for client in (backend.ec2, backend.s3, backend.cloudwatch, backend.efs):
        client.meta.events.register("before-call.*.*", calls.on_call)
        client.meta.events.register("before-send.*.*", calls.on_send)
        client.meta.events.register("after-call.*.*", calls.on_after)
    engine = make_engine(url, pool_size=10)
    sessions = make_session_factory(engine)
    use_context(JobContext(settings, sessions, redis, backend))
    rng = random.Random(seed)
    started = time.perf_counter()
    try:
        with sessions() as session, time_machine.travel(local(TERM_START, 8), tick=False) as clock:
            course = make_course(session, time_zone=str(TZ), term_start=TERM_START, term_end=TERM_END)
            late = {i: rng.choice((3, 4, 5, 6)) for i in range(n) if rng.random() < 0.1}
            expected = n - len(late)
            make_policy(session, course, total_budget=Decimal(24 * expected),
                        templates={CPU: "approved", FINAL: "approved", GPU: "blocked"},
                        term_end_actions={"stop_all": True}, disk_grace_days=GRACE_DAYS)  # fmt: skip
            make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
            names = [f"Student {i}" for i in range(n)]
            students = [
                Student(f"Late {i}", 0)
                if i in late
                else Student(f"Student {i}", make_person(session, course, name=f"Student {i}").id)
                for i, name in enumerate(names)
            ]
            session.commit()
            sim = BenchSemester(session, sessions, course, backend, PRICES, clock)
            sim.account = Account()
            try:
                kinds = behaviour(sim, rng, students, late)
                end = term_end_instant(course).astimezone(UTC)  # type: ignore[union-attr]
                after_term(sim, end)
                finish = (end + timedelta(days=GRACE_DAYS + 2, hours=2)).replace(minute=0, second=0, microsecond=0)
                sim.run_until(finish)
                book_course_usage(session, backend, finish, PRICES)  # the last whole hour booked
                sim.account.observe(backend, finish)
                figures = _figures(session, sim, finish, students)
            finally:
                sim.shutdown()
    finally:
        use_context(None)
        engine.dispose()
        redis.flushdb()
    wire = {op: (len(t), sum(t)) for op, t in calls.seconds.items()}
    return {**figures, "behaviour": kinds, "students": n, "seconds": round(time.perf_counter() - started, 1),
            "aws_calls": dict(sorted(wire.items(), key=lambda kv: -kv[1][1]))}  # fmt: skip


def _figures(session: Session, sim: BenchSemester, end: datetime, students: list[Student]) -> dict[str, object]:
    course = session.get(Course, sim.course_id)
    policy = session.get(CoursePolicy, sim.course_id)
    assert course is not None and policy is not None
    per = dict(session.execute(select(LedgerEntry.person_id, func.sum(LedgerEntry.compute + LedgerEntry.storage))
                               .group_by(LedgerEntry.person_id)).all())  # fmt: skip
    compute, storage = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.compute), 0), func.coalesce(func.sum(LedgerEntry.storage), 0))
    ).one()
    grants = dict(session.execute(select(BudgetGrant.person_id, func.sum(BudgetGrant.amount))
                                  .group_by(BudgetGrant.person_id)).all())  # fmt: skip
    by_kind = select(CourseCharge.kind, func.sum(CourseCharge.amount)).group_by(CourseCharge.kind)
    lines = dict(session.execute(by_kind).all())
    report = course_report(session, course)
    assert report is not None
    (position,) = course_positions(session, end, PRICES, course.id)
    ledger = {"compute": Decimal(compute), "storage": Decimal(storage), **{k: Decimal(v) for k, v in lines.items()}}
    account = sim.account.cost(end)
    overshoot = {p: s - policy.budget_per_student - grants.get(p, 0) for p, s in per.items()}
    worst_running = max((over - bound for over, bound in sim.record.worst.values()), default=Decimal(0))
    left = session.scalar(select(func.count()).where(Workspace.state.not_in(ENDED), Workspace.instance_id.is_not(None)))
    return {
        "max_overshoot": max(overshoot.values(), default=Decimal(0)),
        "over_cap": sum(1 for v in overshoot.values() if v > 0),
        "worst_over_bound": worst_running,
        "course_total": report.spent,
        "budget": policy.total_budget,
        "allocated": report.allocated,
        "over_allocation": report.over_allocation,
        "committed": position.committed,
        "ledger": ledger,
        "account": account,
        "difference": sum(account.values(), Decimal(0)) - sum(ledger.values(), Decimal(0)),
        "volumes_left": sum(1 for v in sim.account.volumes.values() if v[3] is None),
        "archives": len(sim.account.objects),
        "workspaces_not_ended": left,
        "refusals": dict(Counter(c for s in students for _, _, c in s.refusals)),
        "stops": dict(
            session.execute(
                select(WorkspaceEvent.reason, func.count())
                .where(WorkspaceEvent.actor == "enforcement")
                .group_by(WorkspaceEvent.reason)
            ).all()
        ),
        "ticks": sim.record.ticks,
        "describes": sim.account.describes,
    }


def report(r: dict[str, object]) -> None:
    """Print one size's figures."""

    def usd(v: object, places: str = "0.01") -> str:
        return "$" + str(Decimal(str(v)).quantize(Decimal(places)))

    ledger, account, wire = r["ledger"], r["account"], r["aws_calls"]
    kinds = sorted(set(ledger) | set(account))  # type: ignore[arg-type]
    by_kind = ", ".join(f"{k} {usd(account.get(k, 0), '0.0001')} vs {usd(ledger.get(k, 0), '0.0001')}" for k in kinds)  # type: ignore[union-attr]
    print(
        f"\n{r['students']} students x {WEEKS} weeks + {GRACE_DAYS}-day grace ({r['ticks']} ticks, {r['seconds']} s,"
        f" {Decimal(str(r['seconds'])) / Decimal(str(r['students'])):.2f} s a student)\n"
        f"  behaviour {r['behaviour']}\n"
        f"  per-student max overshoot above the cap: {usd(r['max_overshoot'], '0.0001')} ({r['over_cap']} above"
        f" it); worst spend above cap beyond the one-minute bound while running:"
        f" {usd(r['worst_over_bound'], '0.0001')}\n"
        f"  course total {usd(r['course_total'])} of a {usd(r['budget'])} budget; allocated {usd(r['allocated'])}"
        f" (over the IT allocation by {usd(r['over_allocation'])}); committed at the end {usd(r['committed'])}\n"
        f"  account (list prices, described) vs ledger, by kind: {by_kind}\n"
        f"  account {usd(sum(account.values()), '0.0001')} vs ledger {usd(sum(ledger.values()), '0.0001')}:"  # type: ignore[union-attr]
        f" difference {Decimal(str(r['difference'])):.2E}\n"
        f"  after the grace: {r['volumes_left']} volumes left, {r['archives']} archives in S3,"
        f" {r['workspaces_not_ended']} workspaces not ended\n"
        f"  refusals {r['refusals']}; enforced stops {r['stops']}\n"
        f"  the tool's calls to simulated AWS: {sum(n for n, _ in wire.values())}"
        f" in {sum(t for _, t in wire.values()):.0f} s"
        f" ({', '.join(f'{op} {n} in {t:.0f} s' for op, (n, t) in list(wire.items())[:6])})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run each size on a fresh database; exit 1 if the ledger and the account differ by a cent or more."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--seed", type=int, default=229)
    parser.add_argument("--redis-db", type=int, default=13)
    args = parser.parse_args(argv)
    admin, ok = admin_url(), True
    use_default_amis_only()  # as the tests: moto's 44 default images, not its 1,300 extra (and their snapshots)
    index_tag_lookups()  # moto's per-resource tag lookup scans the whole account: quadratic in a describe
    with moto_server() as moto_url:
        for n in args.students:
            with fresh_database(admin, f"cwc_bench_semester_{os.getpid()}") as url:
                r = run(url, with_db(redis_server(), args.redis_db), moto_url, n, args.seed)
            report(r)
            ok = ok and abs(Decimal(str(r["difference"]))) < Decimal("0.01")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
