"""Plan what the minute's enforcement sweep must do. Pure: the shell loads, applies and commits.

Rules, per student and course:
- budget: when spend, plus the storage the student's disks will cost until term end, plus one more minute of
  everything running reaches the cap, hibernate (else stop) every running workspace — so spend never passes
  the cap by more than a minute of running cost, stopped disks included;
- daily cap: the same against today's spend (course time zone), until the next day;
- idle: a running workspace with no activity for its idle limit is hibernated;
- always, before any figure: the term is over (course time), the student's enrollment is not active, the
  course's time zone is unknown, or a workspace cannot be priced → stop (fail closed); these rules need no
  option and are evaluated every minute, so a workspace restarted after closure stops within a minute;
- alerts at 50/75/90/100 % of the cap, once each; anomalies to the instructor (over the cap, or several
  times the course median), once a day;
- course total: when the course's committed money (spent, reserved, course lines) plus one more minute of
  everything running in it reaches the course total, every running workspace of the course stops; instructors
  are alerted at 75/90/100 % of the course total, once each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import median

THRESHOLDS = (50, 75, 90, 100)
COURSE_THRESHOLDS = (75, 90, 100)
COURSE_PERSON = 0  # the person_id of alerts about the whole course (sent to its instructors)
LOOKAHEAD_S = 60
ANOMALY_FACTOR = Decimal(3)
ANOMALY_FLOOR = Decimal(1)  # below a dollar nothing is an anomaly
ONCE = date(2000, 1, 1)  # the `day` of alerts that are sent once per term
ENFORCEMENT_ACTOR = "enforcement"  # the actor of the sweep's stop events (classroom/sql/sweep.py)
# the reasons recorded on a budget stop's workspace event (the terminal explains each to the student)
BUDGET_USED_UP = "budget used up"
DAILY_CAP_REACHED = "daily spending limit reached"
COURSE_BUDGET_USED_UP = "course total budget used up"


@dataclass(frozen=True)
class RunningWorkspace:
    """A workspace that costs compute now."""

    id: int
    hourly: Decimal | None  # None: no price for its instance type or region (it is stopped: fail closed)
    last_active: datetime
    idle_minutes: int


@dataclass(frozen=True)
class StudentPosition:
    """What the sweep knows about one student in one course."""

    course_id: int
    person_id: int
    cap: Decimal
    spent: Decimal
    spent_today: Decimal
    daily_cap: Decimal
    today: date
    running: tuple[RunningWorkspace, ...] = ()
    storage_reserve: Decimal = Decimal(0)  # what the student's disks will still cost until the term ends
    term_end: datetime | None = None  # end of the term's last day in course time (aware); None: no end set
    enrolled: bool = True  # an active enrollment in the course
    zone_known: bool = True  # the course's time zone is known (else nothing about its days can be computed)


@dataclass(frozen=True)
class CoursePosition:
    """What the sweep knows about one course: its total and what is committed (spent by every student, course
    lines such as shared storage, snapshots and orphans, and every disk's storage until term end)."""

    course_id: int
    total: Decimal
    committed: Decimal


@dataclass(frozen=True)
class Stop:
    """Stop (hibernate where possible) one workspace, and why."""

    workspace_id: int
    course_id: int
    person_id: int
    code: str  # term_over | enrollment_inactive | time_zone | unpriced | budget | daily_cap | idle
    reason: str


@dataclass(frozen=True)
class Alert:
    """A notice to send once: to the student (budget-NN, daily-cap) or to the instructor (anomaly-…)."""

    course_id: int
    person_id: int
    kind: str
    day: date
    percent: int = 0


@dataclass
class Plan:
    """Everything the sweep will do."""

    stops: list[Stop] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def idle_limit(course_minutes: int, template_minutes: int) -> int:
    """A workspace's idle limit in minutes: the smaller of its course's and its template's (the GPU template's 60
    minutes hold in a course that allows 240)."""
    return min(course_minutes, template_minutes)


def idle_text(minutes: int) -> str:
    """An idle limit as the pages say it: "2 hours", "1 hour", "90 minutes"."""
    if minutes % 60:
        return f"{minutes} minutes"
    return "1 hour" if minutes == 60 else f"{minutes // 60} hours"


def _minute_of(running: tuple[RunningWorkspace, ...]) -> Decimal:
    return sum((w.hourly or Decimal(0) for w in running), Decimal(0)) * LOOKAHEAD_S / 3600


def _always(p: StudentPosition, now: datetime) -> tuple[str, str] | None:
    """The rules that hold whatever the figures: (code, reason) when everything running must stop."""
    if not p.zone_known:
        return "time_zone", "the course's time zone is unknown, so its term and days cannot be checked"
    if p.term_end is not None and now > p.term_end:
        return "term_over", "the term is over"
    if not p.enrolled:
        return "enrollment_inactive", "no longer enrolled in the course"
    return None


def _stops(p: StudentPosition, now: datetime) -> list[Stop]:
    if (rule := _always(p, now)) is not None:
        return [Stop(w.id, p.course_id, p.person_id, *rule) for w in p.running]
    unpriced = [
        Stop(w.id, p.course_id, p.person_id, "unpriced", "no price for this instance type in this region")
        for w in p.running
        if w.hourly is None
    ]
    ahead = _minute_of(p.running)
    if p.running and p.spent + p.storage_reserve + ahead >= p.cap:
        return [Stop(w.id, p.course_id, p.person_id, "budget", BUDGET_USED_UP) for w in p.running]
    if p.running and p.spent_today + ahead >= p.daily_cap:
        return [Stop(w.id, p.course_id, p.person_id, "daily_cap", DAILY_CAP_REACHED) for w in p.running]
    return unpriced + [
        Stop(w.id, p.course_id, p.person_id, "idle", f"idle for {w.idle_minutes} minutes")
        for w in p.running
        if w.hourly is not None and now - w.last_active >= timedelta(minutes=w.idle_minutes)
    ]


def _alerts(p: StudentPosition, sent: set[tuple[int, int, str, date]], stopped_for_budget: bool) -> list[Alert]:
    out = []
    percent = 100 if stopped_for_budget else (int(p.spent * 100 / p.cap) if p.cap > 0 else 100)
    for threshold in THRESHOLDS:
        key = (p.course_id, p.person_id, f"budget-{threshold}", ONCE)
        if percent >= threshold and key not in sent:
            out.append(Alert(p.course_id, p.person_id, key[2], ONCE, percent))
    if p.spent_today >= p.daily_cap and (p.course_id, p.person_id, "daily-cap", p.today) not in sent:
        out.append(Alert(p.course_id, p.person_id, "daily-cap", p.today, percent))
    return out


def _anomalies(positions: list[StudentPosition], sent: set[tuple[int, int, str, date]]) -> list[Alert]:
    out = []
    by_course: dict[int, list[StudentPosition]] = {}
    for p in positions:
        by_course.setdefault(p.course_id, []).append(p)
    for course_id, group in by_course.items():
        mid = Decimal(median([p.spent for p in group])) if group else Decimal(0)
        for p in group:
            kind = (
                "anomaly-over-cap"
                if p.spent > p.cap
                else "anomaly-median"
                if p.spent >= ANOMALY_FLOOR and mid > 0 and p.spent > ANOMALY_FACTOR * mid
                else None
            )
            if kind and (course_id, p.person_id, kind, p.today) not in sent:
                out.append(Alert(course_id, p.person_id, kind, p.today, int(p.spent * 100 / p.cap) if p.cap else 0))
    return out


def _course_rule(
    c: CoursePosition, group: list[StudentPosition], stopped: set[int], sent: set[tuple[int, int, str, date]]
) -> Plan:
    """Stop the course's running workspaces at its total; alert its instructors at 75/90/100 % once each."""
    plan = Plan()
    running = [(p, w) for p in group for w in p.running]
    over = c.committed + _minute_of(tuple(w for _, w in running)) >= c.total
    if over and running:
        plan.stops = [
            Stop(w.id, c.course_id, p.person_id, "course_budget", COURSE_BUDGET_USED_UP)
            for p, w in running
            if w.id not in stopped
        ]
    percent = 100 if over else (int(c.committed * 100 / c.total) if c.total > 0 else 100)
    for threshold in COURSE_THRESHOLDS:
        kind = f"course-{threshold}"
        if percent >= threshold and (c.course_id, COURSE_PERSON, kind, ONCE) not in sent:
            plan.alerts.append(Alert(c.course_id, COURSE_PERSON, kind, ONCE, percent))
    return plan


def plan_enforcement(
    positions: list[StudentPosition],
    now: datetime,
    sent: set[tuple[int, int, str, date]],
    courses: list[CoursePosition] | None = None,
) -> Plan:
    """Decide stops and alerts for every student, then for every course in `courses`; `sent` holds
    (course, person, kind, day) already sent."""
    plan = Plan()
    for p in positions:
        stops = _stops(p, now)
        plan.stops += stops
        plan.alerts += _alerts(p, sent, any(s.code == "budget" for s in stops))
    plan.alerts += _anomalies(positions, sent)
    stopped = {s.workspace_id for s in plan.stops}
    by_course: dict[int, list[StudentPosition]] = {}
    for p in positions:
        by_course.setdefault(p.course_id, []).append(p)
    for c in courses or []:
        part = _course_rule(c, by_course.get(c.course_id, []), stopped, sent)
        plan.stops += part.stops
        plan.alerts += part.alerts
    return plan
