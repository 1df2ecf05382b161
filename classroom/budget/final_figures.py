"""Pure: every figure of the term's final report, from rows the shell fetched (classroom.services.final_report).

No I/O. Definitions (the page and the email say them too):
- total spend: the students' ledger (compute, storage, transfer) plus the course's own lines (EFS, snapshots...);
- idle-stop savings: for each stop by the enforcement sweep for idleness, the hours the workspace then stayed
  stopped (until its next start, or the end of the term), at most SAVING_CAP_HOURS per stop, times that
  workspace's own running rate from the ledger (its compute dollars over its running hours); storage is billed
  while stopped too, so it is not a saving;
- efficiency: the share of a student's agent heartbeats, taken while their workspace ran, that saw activity (an
  SSH session, Jupyter, CPU use or changed files); heartbeats come at a steady pace, so this is the share of
  running time that was active;
- peak week: the week of term with the most spend.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
HOUR = Decimal(3600)
SAVING_CAP_HOURS = 24  # an idle workspace left on would have met the daily cap or its student within a day
HIGH, MEDIUM = Decimal("0.9"), Decimal("0.7")
CAP_SHARE_ALERT = Decimal("0.10")  # recommend a larger budget when a tenth of the class hit its cap
LOW_SHARE_ALERT = Decimal("0.10")
UNDERSPEND = Decimal("0.70")
STAFF_ACTIONS = {"debug.session.start": "debug_sessions", "workspace.reset": "resets", "message.sent": "messages"}
HELP_REQUESTED = "help.requested"
ACTIVE_CPU = Decimal(10)  # percent: provisioning.agent_service.ACTIVE_CPU, which the domain cannot import (tested)


@dataclass(frozen=True)
class StudentUse:
    """One student's term: ledger spend, cap (base plus grants), running time, heartbeats while running."""

    person_id: int
    name: str
    spent: Decimal
    cap: Decimal
    running_seconds: Decimal
    heartbeats: int = 0
    active_heartbeats: int = 0


@dataclass(frozen=True)
class IdleStop:
    """A stop for idleness: when, when the workspace next started (None: never), its running rate per hour."""

    stopped_at: datetime
    resumed_at: datetime | None
    hourly: Decimal


@dataclass(frozen=True)
class ActionCount:
    """Audit events of one action by one actor."""

    action: str
    actor_id: int | None
    actor_name: str
    n: int


@dataclass(frozen=True)
class Week:
    """Spend in one week of term."""

    start: date
    term_week: int | None
    spent: Decimal


@dataclass(frozen=True)
class Archives:
    """The course's archived homes: how many, bytes, where, and when the last one expires."""

    count: int
    size_bytes: int
    location: str
    expires: datetime | None


@dataclass(frozen=True)
class PreviousTerm:
    """The same course's previous term, when the tool knows it."""

    name: str
    spent: Decimal
    students: int


@dataclass(frozen=True)
class ReportInput:
    """Everything the final report is computed from."""

    course_name: str
    term_start: date | None
    term_end: date | None
    term_end_at: datetime | None
    total_budget: Decimal
    budget_per_student: Decimal
    course_lines: Decimal
    idle_minutes: int
    students: tuple[StudentUse, ...]
    weeks: tuple[Week, ...]
    idle_stops: tuple[IdleStop, ...]
    actions: tuple[ActionCount, ...]
    templates_refused: int
    flagged_pairs: int | None  # None: no similarity run in this course (or the integrity tables are absent)
    archives: Archives
    previous: PreviousTerm | None
    debug_seconds: tuple[int, ...] = ()  # each ended debug session's length (its start and end audit events)


@dataclass(frozen=True)
class FinalReport:
    """The figures the page, the email and the PDF show."""

    source: ReportInput
    total_spent: Decimal
    unused: Decimal
    students: int
    average: Decimal
    lowest: Decimal
    highest: Decimal
    over_budget: int
    under_budget: int
    at_cap: int
    compute_hours: Decimal
    average_hours: Decimal
    savings: Decimal
    savings_share: Decimal  # of what the term would have cost without the idle stops
    efficiency: dict[str, int]  # high, medium, low, no data
    peak: Week | None
    debug_sessions: int
    debug_minutes: Decimal | None  # the average length of the ended sessions
    resets: int
    messages: int
    help_requests: int
    most_active: tuple[str, int] | None
    change_from_previous: Decimal | None  # a fraction: -0.28 is 28 % less than the previous term
    recommendations: tuple[str, ...]


def cents(value: Decimal) -> Decimal:
    """Money rounded half up to the cent."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def saved_hours(stop: IdleStop, term_end_at: datetime | None) -> Decimal:
    """Hours the workspace stayed stopped after one idle stop, capped (see the module docstring)."""
    until = stop.resumed_at or term_end_at or stop.stopped_at + timedelta(hours=SAVING_CAP_HOURS)
    seconds = max(0, min((until - stop.stopped_at).total_seconds(), SAVING_CAP_HOURS * 3600))
    return Decimal(int(seconds)) / HOUR


def efficiency_bucket(s: StudentUse) -> str:
    """high (> 90 % of running time active), medium (70-90 %), low (< 70 %), or no data."""
    if s.heartbeats == 0:
        return "no data"
    share = Decimal(s.active_heartbeats) / Decimal(s.heartbeats)
    return "high" if share > HIGH else "medium" if share >= MEDIUM else "low"


def _staff(actions: tuple[ActionCount, ...]) -> tuple[Counter[str], tuple[str, int] | None]:
    kinds: Counter[str] = Counter()
    people: Counter[tuple[int, str]] = Counter()
    for a in actions:
        kinds[a.action] += a.n
        if a.action in STAFF_ACTIONS and a.actor_id is not None:
            people[(a.actor_id, a.actor_name)] += a.n
    top = max(people.items(), key=lambda kv: (kv[1], -kv[0][0]), default=None)
    return kinds, (top[0][1], top[1]) if top else None


def compute_final_report(inp: ReportInput) -> FinalReport:
    """Compute every figure of the final report from the fetched rows."""
    spends = [s.spent for s in inp.students]
    n = len(inp.students)
    total = sum(spends, ZERO) + inp.course_lines
    seconds = sum((s.running_seconds for s in inp.students), ZERO)
    savings = sum((saved_hours(st, inp.term_end_at) * st.hourly for st in inp.idle_stops), ZERO)
    buckets = Counter(efficiency_bucket(s) for s in inp.students)
    kinds, top = _staff(inp.actions)
    at_cap = sum(1 for s in inp.students if s.cap > 0 and s.spent >= s.cap)
    change = None
    if inp.previous is not None and inp.previous.spent > 0:
        change = (total - inp.previous.spent) / inp.previous.spent
    report = FinalReport(
        source=inp,
        total_spent=total,
        unused=inp.total_budget - total,
        students=n,
        average=sum(spends, ZERO) / n if n else ZERO,
        lowest=min(spends, default=ZERO),
        highest=max(spends, default=ZERO),
        over_budget=sum(1 for s in inp.students if s.spent > s.cap),
        under_budget=sum(1 for s in inp.students if s.spent <= s.cap),
        at_cap=at_cap,
        compute_hours=seconds / HOUR,
        average_hours=seconds / HOUR / n if n else ZERO,
        savings=savings,
        savings_share=savings / (total + savings) if total + savings > 0 else ZERO,
        efficiency={k: buckets.get(k, 0) for k in ("high", "medium", "low", "no data")},
        peak=max(inp.weeks, key=lambda w: (w.spent, -w.start.toordinal()), default=None),
        debug_sessions=kinds["debug.session.start"],
        debug_minutes=Decimal(sum(inp.debug_seconds)) / 60 / len(inp.debug_seconds) if inp.debug_seconds else None,
        resets=kinds["workspace.reset"],
        messages=kinds["message.sent"],
        help_requests=kinds[HELP_REQUESTED],
        most_active=top,
        change_from_previous=change,
        recommendations=(),
    )
    return FinalReport(**{**report.__dict__, "recommendations": recommend(report)})


def recommend(r: FinalReport) -> tuple[str, ...]:
    """Suggestions for next term, each derived from a figure of this one."""
    out: list[str] = []
    inp = r.source
    if r.students and Decimal(r.at_cap) / r.students >= CAP_SHARE_ALERT:
        out.append(
            f"{r.at_cap} of {r.students} students ({_pct(Decimal(r.at_cap) / r.students)}) reached their budget cap: "
            f"consider a larger per-student budget than ${cents(inp.budget_per_student)}."
        )
    if inp.templates_refused:
        out.append(
            f"{inp.templates_refused} template request(s) were refused: consider offering those templates on "
            "request, or a cheaper alternative."
        )
    low = r.efficiency["low"]
    if r.students and Decimal(low) / r.students >= LOW_SHARE_ALERT:
        out.append(
            f"{low} student(s) had workspaces running idle more than 30 % of the time: consider an idle stop "
            f"shorter than {inp.idle_minutes} minutes."
        )
    if inp.total_budget > 0 and r.total_spent < inp.total_budget * UNDERSPEND:
        out.append(
            f"The course used {_pct(r.total_spent / inp.total_budget)} of its budget: a smaller total budget "
            "would have been enough."
        )
    if r.help_requests and r.debug_sessions == 0:
        out.append(f"{r.help_requests} help request(s) and no debug session: show TAs the debug page.")
    return tuple(out)


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


def percent(fraction: Decimal) -> str:
    """A fraction as a percentage to one decimal: 0.951 -> 95.1 %."""
    return _pct(fraction)
