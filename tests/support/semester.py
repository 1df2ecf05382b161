"""A simulated semester on an accelerated clock: students, their visits, and the minute's machinery.

The clock is time-machine's, frozen between ticks, so every `utcnow()` in services, jobs, heartbeats and the
audit trail reads simulated time; the sweep gets the same instant explicitly. Everything else is real: the
launch policy and services the views call, the jobs the worker runs (in-process, after each commit),
reconcile against simulated AWS (moto), the agents' heartbeats with the token each instance got in its user
data, and PostgreSQL. What students do at one instant (a class opening their workspaces at 14:00) runs
concurrently, each in its own session, as it would in the web tier.

The clock jumps from tick to tick. A tick is the next of: a scheduled event (a visit starts, stops being
active, ends); a clock boundary in course time (every three hours while anything runs, so working students'
agents report well within the idle limit; every midnight otherwise, so storage accrues and spend_daily stays
per day); and the approach of a stop. For that the simulation asks the planner itself (pure) about each
running student's position projected minute by minute at their current rates; if it would stop anything
before the next tick, the clock goes to three minutes short of that minute and then advances one minute at a
time, as the production sweep runs every minute. So idle stops happen on their minute, the one-minute
overshoot bound is exercised on real sweeps, and no minute is skipped in which the minute's sweep could
have stopped anything, whatever the planner's rules are (threshold alerts may go out up to a tick late).
"""

from __future__ import annotations

import base64
import heapq
import importlib
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from classroom.budget.enforcement import LOOKAHEAD_S, StudentPosition, plan_enforcement
from classroom.budget.policy import Decision
from classroom.claims import LaunchClaims
from classroom.db import utcnow
from classroom.models import Course, Deployment, Workspace
from classroom.services.budgets import decide_launch
from classroom.services.enforcement import load_positions, run_sweep
from classroom.services.launches import LaunchTarget, record_launch
from classroom.services.opening import Link, find_workspace, open_workspace, scope_of, workspace_key
from classroom.services.workspaces import Job, request_stop
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import RegionPrices
from provisioning.agent_service import parse_report, record_heartbeat
from provisioning.aws import AwsBackend
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.lease import DEFAULT_LEASE as LEASE
from provisioning.userdata import agent_config_from_user_data

S = WorkspaceState
AGENT_UP = (S.PROVISIONING, S.STARTING, S.RUNNING)
MOVING = (S.REQUESTED, S.PROVISIONING, S.STARTING, S.STOPPING)
HAS_DISK = (S.PROVISIONING, S.RUNNING, S.STOPPING, S.STOPPED, S.HIBERNATED, S.STARTING, S.TERMINATING)
MINUTE = timedelta(minutes=1)
BUSY_STEP, QUIET_STEP = timedelta(hours=3), timedelta(days=1)
BEAT_EVERY = timedelta(hours=2)  # how often a working student's agent is heard here (the real one: every minute)
APPROACH = 3 * MINUTE  # stop the clock this long before a student would reach a cap
WORKERS = 6
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"

ENFORCED_SQL = text("""
SELECT e.workspace_id, w.person_id, e.reason FROM workspace_events e JOIN workspaces w ON w.id = e.workspace_id
WHERE e.at = :now AND e.actor = 'enforcement'
""")

Action = Callable[[Session], object]


@dataclass
class Student:
    """One simulated student and what happened to them."""

    name: str
    person_id: int
    refusals: list[tuple[datetime, str, str]] = field(default_factory=list)  # (when, template, code)


@dataclass(frozen=True)
class Visit:
    """A student works on a link's workspace from `start`, actively until `active_until`, and presses Stop
    at `stop_at` (None: forgets to)."""

    student: Student
    link: str
    template_id: str
    start: datetime
    active_until: datetime
    stop_at: datetime | None


@dataclass
class Record:
    """What the minute's machinery did over the semester."""

    ticks: int = 0
    minute_ticks: int = 0
    stops: list[tuple[datetime, int, str]] = field(default_factory=list)  # (when, workspace, reason)
    # person -> (the most spend above the cap seen at a sweep while they ran or were being stopped,
    #            one minute of the most they ever had running)
    worst: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def observe(self, positions: list[StudentPosition], stopped_people: set[int]) -> None:
        """Note each running (or just stopped) student's spend against their cap after a sweep."""
        for p in positions:
            minute = sum((w.hourly for w in p.running), Decimal(0)) * LOOKAHEAD_S / 3600
            over, bound = self.worst.get(p.person_id, (Decimal("-Infinity"), Decimal(0)))
            if p.running or p.person_id in stopped_people:
                over = max(over, p.spent - p.cap)
            self.worst[p.person_id] = (over, max(bound, minute))


class Semester:
    """Drive one course's semester tick by tick (see the module docstring for the clock)."""

    def __init__(  # noqa: PLR0913
        self,
        session: Session,
        sessions: sessionmaker[Session],
        course: Course,
        backend: AwsBackend,
        prices: RegionPrices,
        clock,  # type: ignore[no-untyped-def]  # time_machine's traveller
    ) -> None:
        self.session, self.sessions, self.backend, self.prices, self.clock = session, sessions, backend, prices, clock
        self.course_id, self.tz = course.id, ZoneInfo(course.time_zone)
        self.catalog = load_catalog()
        self.now = utcnow()
        self.events: list[tuple[datetime, int, Action]] = []
        self._seq = itertools.count()
        self.active_until: dict[int, datetime] = {}  # workspace -> its agent reports activity until then
        self.tokens: dict[int, str] = {}
        self.beats: dict[int, datetime] = {}
        self.record = Record()
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="student")

    def at(self, when: datetime, action: Action) -> None:
        """Run `action(session)` at the tick `when` (in its own session, beside the other actions due then)."""
        heapq.heappush(self.events, (when, next(self._seq), action))

    def visit(self, v: Visit) -> None:
        """Schedule a visit: open the workspace, keep its agent active, press Stop (unless forgotten)."""
        self.at(v.start, lambda db: self._begin(db, v))
        self.at(v.active_until, lambda db: None)  # a tick, so the last active report is on time
        if v.stop_at is not None:
            self.at(v.stop_at, lambda db: self.close(db, v.student, v.link, v.template_id))

    def _begin(self, db: Session, v: Visit) -> None:
        ws = self.open(db, v.student, v.link, v.template_id)
        if ws is not None:
            self.active_until[ws.id] = max(v.active_until, self.active_until.get(ws.id, v.active_until))

    # --- what students do, through the services the views call -------------------------------------------

    def decide(self, db: Session, student: Student, template_id: str, *, starting: bool = False) -> Decision:
        """The launch policy as the workspace page asks it."""
        course = db.get(Course, self.course_id)
        assert course is not None
        return decide_launch(
            db,
            course,
            student.person_id,
            template_id,
            catalog=self.catalog,
            prices=self.prices,
            now=self.now,
            starting=starting,
        )

    def open(self, db: Session, student: Student, link: str, template_id: str) -> Workspace | None:
        """Start pressed on an assignment link (the service the view calls); None when the policy refuses."""
        template = self.catalog.get(template_id)
        assert template is not None
        opened = open_workspace(
            db,
            db.get(Course, self.course_id),
            student.person_id,
            Link(link, link, template_id, assignment=True),
            template,
            catalog=self.catalog,
            prices=self.prices,
            region=self.backend.region,
            now=self.now,
        )
        if opened.ws is None:
            assert opened.decision is not None
            student.refusals.append((self.now, template_id, opened.decision.code))
            return None
        db.commit()
        self.run_jobs(opened.jobs)
        return opened.ws

    def join(self, db: Session, student: Student, link: str) -> None:
        """A late enrollee's first launch of `link`: the LTI launch service creates their person and enrollment
        (the same service the launch view calls after validating the id_token); sets `student.person_id`."""
        course = db.get(Course, self.course_id)
        assert course is not None
        deployment = db.get(Deployment, course.deployment_id)
        assert deployment is not None
        target = LaunchTarget(course.platform_id, deployment.id, deployment.deployment_id)
        sub = student.name.lower().replace(" ", "-")
        claims = LaunchClaims("LtiResourceLinkRequest", deployment.deployment_id, sub, (LEARNER,), course.context_id,
                              name=student.name, email=f"{sub}@university.edu", resource_link_id=link)  # fmt: skip
        student.person_id = record_launch(db, target, claims).person_id

    def workspace(self, db: Session, student: Student, link: str, template_id: str) -> Workspace | None:
        """The live workspace a link opens for this student (shared by every link of a template by default)."""
        return find_workspace(
            db, self.course_id, student.person_id, workspace_key(scope_of(db, self.course_id), link, template_id)
        )

    def close(self, db: Session, student: Student, link: str, template_id: str) -> None:
        """The Stop button (hibernate), if the workspace is still running."""
        ws = self.workspace(db, student, link, template_id)
        if ws is not None and ws.state in AGENT_UP:
            todo = request_stop(
                db, ws, actor_person_id=student.person_id, actor="student", reason="done for today", hibernate=True
            )
            db.commit()
            self.run_jobs(todo)

    # --- the worker, the agents and the minute's sweep ----------------------------------------------------

    def run_jobs(self, todo: list[Job]) -> None:
        """Run released jobs in-process, as the RQ worker would after the commit."""
        for job in todo:
            module, name = job.func.rsplit(".", 1)
            getattr(importlib.import_module(module), name)(job.workspace_id)

    def _in_session(self, action: Action) -> object:
        with self.sessions() as db:
            result = action(db)
            db.commit()
            return result

    def run_all(self, actions: list[Action]) -> list[object]:
        """Run actions side by side, each in its own session; then refresh the clock's session."""
        results = list(self.pool.map(self._in_session, actions))
        self.session.expire_all()
        return results

    def _token(self, ws_id: int, instance_id: str) -> str:
        """The agent's token, read from the instance's user data in simulated AWS (as the agent reads it)."""
        if ws_id not in self.tokens:
            raw = self.backend.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
            cfg = agent_config_from_user_data(base64.b64decode(raw["UserData"]["Value"]).decode())
            self.tokens[ws_id] = str(cfg["token"])
        return self.tokens[ws_id]

    def heartbeats(self) -> None:
        """Booting agents report in; working students' agents report activity (hourly is enough here)."""
        reports = []
        for ws in self.session.scalars(
            select(Workspace).where(Workspace.course_id == self.course_id, Workspace.state.in_(AGENT_UP))
        ):
            until = self.active_until.get(ws.id, self.now - MINUTE)
            active = self.now <= until
            due = self.now - self.beats.get(ws.id, self.now - BEAT_EVERY) >= BEAT_EVERY or self.now == until
            if ws.instance_id and (ws.state is not S.RUNNING or (active and due)):
                body = {"workspace_id": ws.id, "ssh_sessions": int(active), "cpu_pct": 40 if active else 0.5}
                reports.append((ws.id, ws.instance_id, parse_report(body)))
                self.beats[ws.id] = self.now
        self.run_all(
            [
                lambda db, r=r: record_heartbeat(  # type: ignore[misc]
                    db, self._token(r[0], r[1]), r[2], prices=self.prices, lease=LEASE, now=self.now
                )
                for r in reports
            ]
        )

    def reconcile_if_moving(self) -> None:
        """Reconcile (one describe) when a workspace waits for AWS to finish a start or stop."""
        if self._anything(MOVING):
            reconcile_workspaces()
            self.session.expire_all()

    def sweep(self) -> list[StudentPosition]:
        """The minute's sweep, its stop jobs after the commit; returns the students' positions afterwards."""
        result = run_sweep(self.session, self.now, self.prices)
        self.session.commit()
        enforced = self.session.execute(ENFORCED_SQL, {"now": self.now}).all() if result.stopped else []
        self.record.stops += [(self.now, r.workspace_id, r.reason) for r in enforced]
        if result.jobs:
            self.run_jobs(result.jobs)
            self.reconcile_if_moving()
        # Nothing was stopped: nothing has changed since the sweep read the positions (the students' threads are
        # idle and alerts are not money), so its own are the positions afterwards.
        positions = load_positions(self.session, self.now, self.prices) if result.stopped else result.positions
        self.record.observe(positions, {r.person_id for r in enforced})
        return positions

    # --- the clock ---------------------------------------------------------------------------------------

    def tick(self) -> list[StudentPosition]:
        """Everything due now: scheduled actions, agents reporting, reconcile, the sweep."""
        self.record.ticks += 1
        due = []
        while self.events and self.events[0][0] <= self.now:
            due.append(heapq.heappop(self.events)[2])
        if due:  # what people see is never older than the last minute's sweep, as in production
            self.sweep()
        self.run_all(due)
        self.heartbeats()
        if due:
            self.reconcile_if_moving()
        return self.sweep()

    def next_tick(self, positions: list[StudentPosition]) -> datetime:
        """The next instant at which something is scheduled or the sweep could stop something."""
        running = [p for p in positions if p.running]
        step = BUSY_STEP if running or self._anything(AGENT_UP + MOVING) else QUIET_STEP
        candidates = [self._boundary(step)]
        if self.events:
            candidates.append(self.events[0][0])
        if running:
            candidates.append(self._approach(running, min(candidates)))
        return min(candidates)

    def _approach(self, running: list[StudentPosition], horizon: datetime) -> datetime:
        """APPROACH before the planner would first stop a running student (the next minute when that is closer).

        Asks the planner itself (classroom.budget.enforcement, pure) about each student's position projected
        minute by minute at today's rates, so the clock follows whatever its rules are: cap, daily cap, idle.
        """
        rates = self._hourly_rates()
        minutes = int((horizon - self.now) / MINUTE)
        first = minutes + 1
        for p in running:
            rate = rates.get(p.person_id, Decimal(0))
            lo, hi = 0, minutes + 1  # invariant: no stop after lo minutes; a stop after hi (or none in range)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                later = replace(p, spent=p.spent + rate * mid / 60, spent_today=p.spent_today + rate * mid / 60)
                if plan_enforcement([later], self.now + mid * MINUTE, set()).stops:
                    hi = mid
                else:
                    lo = mid
            first = min(first, hi)
        if first > minutes:
            return horizon
        ahead = first - int(APPROACH / MINUTE)
        if ahead <= 1:
            self.record.minute_ticks += 1
            return self.now + MINUTE
        return self.now + ahead * MINUTE

    def _hourly_rates(self) -> dict[int, Decimal]:
        """What each student's workspaces cost per hour now: compute while running, storage while a disk exists."""
        rates: dict[int, Decimal] = {}
        for ws in self.session.scalars(
            select(Workspace).where(Workspace.course_id == self.course_id, Workspace.state.in_(HAS_DISK))
        ):
            rate = self.prices.storage_hourly(ws.volume_gb)
            if ws.state in AGENT_UP + (S.STOPPING,):
                rate += self.prices.running_hourly(ws.instance_type)  # public IPv4 included
            rates[ws.person_id] = rates.get(ws.person_id, Decimal(0)) + rate
        return rates

    def _anything(self, states: tuple[WorkspaceState, ...]) -> bool:
        return self.session.scalar(select(Workspace.id).where(Workspace.state.in_(states)).limit(1)) is not None

    def _boundary(self, step: timedelta) -> datetime:
        """The next multiple of `step` in course time (the next midnight for a day)."""
        local = self.now.astimezone(self.tz)
        hours = min(24, max(1, int(step.total_seconds() // 3600)))
        base = local.replace(minute=0, second=0, microsecond=0, hour=local.hour - local.hour % hours)
        return (base + step).astimezone(self.now.tzinfo)

    def run_until(self, end: datetime) -> None:
        """Tick until `end`, with a last tick at `end`."""
        while self.now < end:
            positions = self.tick()
            self.now = min(self.next_tick(positions), end)
            self.clock.move_to(self.now)
        self.tick()

    def shutdown(self) -> None:
        """Stop the students' threads."""
        self.pool.shutdown(wait=True)
