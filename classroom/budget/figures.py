"""Budget figures as the budget page and the cost report show them. Pure: no I/O, Decimal money.

Percent of cap, effective cost per hour of use, burn and days left, the flags of the cost report (over cap,
near cap, anomaly against the course median: the enforcement sweep's rule) and the week of the term.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from classroom.budget.enforcement import ANOMALY_FACTOR, ANOMALY_FLOOR
from classroom.budget.runway import Runway, runway

NEAR_CAP_PERCENT = 90
HOUR = Decimal(3600)
ZERO = Decimal(0)


def percent_of(part: Decimal, whole: Decimal) -> int:
    """Whole percent, rounded half up (100 when there is nothing to divide by and something was spent)."""
    if whole <= 0:
        return 100 if part > 0 else 0
    return int((part * 100 / whole).to_integral_value(ROUND_HALF_UP))


def per_hour(spent: Decimal, running_seconds: Decimal) -> Decimal | None:
    """Effective cost per hour of use: spend (compute and disk) divided by running hours; None without use."""
    return spent * HOUR / running_seconds if running_seconds > 0 else None


class UseFigures:
    """Percent of cap, running hours and effective cost per hour: the budget view and the report rows alike."""

    spent: Decimal
    running_seconds: Decimal
    cap: Decimal

    @property
    def percent(self) -> int:
        return percent_of(self.spent, self.cap)

    @property
    def running_hours(self) -> Decimal:
        return self.running_seconds / HOUR

    @property
    def effective_hourly(self) -> Decimal | None:
        return per_hour(self.spent, self.running_seconds)


@dataclass(frozen=True)
class DaySpend:
    """Spend on one course-local day."""

    day: date
    amount: Decimal


@dataclass(frozen=True)
class RunningNow:
    """A workspace that costs compute now, with its cost per hour while it runs (None: no price)."""

    workspace_id: int
    title: str
    instance_type: str
    state: str
    hourly: Decimal | None


@dataclass(frozen=True)
class TemplateRate:
    """The 24/7 figure of a template: cost per hour and per day running all the time (compute and disk)."""

    name: str
    instance_type: str
    hourly: Decimal
    daily: Decimal


@dataclass(frozen=True)
class StudentBudget(UseFigures):
    """One student's position in one course: cap, spend, burn, daily history, what runs now."""

    base: Decimal
    grants: Decimal
    spent: Decimal
    running_seconds: Decimal
    burn_per_day: Decimal
    days: tuple[DaySpend, ...]
    running: tuple[RunningNow, ...]
    parked: int  # stopped or hibernated workspaces: disk cost only
    template: TemplateRate | None
    daily_cap: Decimal
    idle_minutes: int
    reserved: Decimal = ZERO  # what existing disks will cost to term end and through the grace (archives are the
    # course's): held back, as enforced
    grace_days: int = 0  # how long the disks are kept after the term (the course's setting)
    term_days: Decimal | None = None  # days to the term's end (course time); None without one

    @property
    def cap(self) -> Decimal:
        return self.base + self.grants

    @property
    def remaining(self) -> Decimal:
        """Left to run workspaces with: the cap less spend and the disks' reserve (the launch check's figure)."""
        return max(ZERO, self.cap - self.spent - self.reserved)

    @property
    def days_left(self) -> Decimal | None:
        """Days the remaining budget lasts at the current burn, to one decimal; None without recent use."""
        if self.burn_per_day <= 0:
            return None
        return (self.remaining / self.burn_per_day).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def pace(self) -> Runway:
        """The current burn against the remaining budget, bounded by the term's end and the daily cap."""
        return runway(self.remaining, self.burn_per_day, daily_cap=self.daily_cap, term_days=self.term_days)


@dataclass(frozen=True)
class StudentRow(UseFigures):
    """One student's line in the cost report."""

    person_id: int
    name: str
    email: str
    active: bool
    cap: Decimal
    spent: Decimal
    running_seconds: Decimal
    idle_stops: int
    has_spend: bool
    anomaly: bool = False  # spent several times the course median (see classroom.budget.enforcement)
    reserved: Decimal = Decimal(0)  # what the student's disks will still cost (the launch check holds it back)

    @property
    def left(self) -> Decimal:
        """What the student can still spend, as their budget page says: cap less spend and the disks' reserve."""
        return max(Decimal(0), self.cap - self.spent - self.reserved)

    @property
    def over_cap(self) -> bool:
        return self.spent > self.cap

    @property
    def near_cap(self) -> bool:
        return not self.over_cap and self.spent * 100 >= self.cap * NEAR_CAP_PERCENT and self.spent > 0


@dataclass(frozen=True)
class WeekSpend:
    """Spend in one ISO week (Monday to Sunday, course-local days)."""

    start: date
    spent: Decimal
    running_seconds: Decimal
    students: int  # students who ran a workspace that week
    term_week: int | None

    @property
    def label(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def running_hours(self) -> Decimal:
        return self.running_seconds / HOUR


LINE_LABELS = {
    "efs": "Shared course files (EFS)",
    "snapshot": "Disk snapshots",
    "archive": "Archived homes (S3)",
    "transfer": "Data sent out by staff workspaces",
    "orphan": "Instances with no workspace (stopped)",
    "archive_run": "Workspaces started to archive their home",
}


@dataclass(frozen=True)
class CourseLine:
    """One kind of cost booked to the course rather than a student (course_charges), summed over the term."""

    kind: str
    amount: Decimal

    @property
    def label(self) -> str:
        return LINE_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True)
class CourseReport:
    """The instructor's cost report: course total against the budget, per student, by week."""

    total_budget: Decimal
    budget_per_student: Decimal
    budget_source: str
    course_grants: Decimal  # extra budget or rollover for the course as a whole (person_id is null)
    student_grants: Decimal
    rows: tuple[StudentRow, ...]
    weeks: tuple[WeekSpend, ...]
    median: Decimal  # of the students with recorded spend
    default_template: str
    allocated: Decimal = ZERO  # promised to students: each active student's base budget plus every grant
    course_lines: tuple[CourseLine, ...] = ()  # EFS, snapshots, archives, staff transfer, orphans
    committed: Decimal | None = None  # the course position (spent and reserved) the launch check judges; None: not read

    @property
    def unallocated(self) -> Decimal:
        """What is left to grant out of the course total (never raised by grants)."""
        return self.total_budget - self.allocated

    @property
    def over_allocation(self) -> Decimal:
        """How far the roster and grants promise more than the IT allocation (0 when within it)."""
        return max(ZERO, self.allocated - self.total_budget)

    @property
    def students_spent(self) -> Decimal:
        """What the students spent (their transfer out included)."""
        return sum((r.spent for r in self.rows), ZERO)

    @property
    def course_lines_total(self) -> Decimal:
        return sum((line.amount for line in self.course_lines), ZERO)

    @property
    def spent(self) -> Decimal:
        """The course's spend: the students' and the lines booked to the course."""
        return self.students_spent + self.course_lines_total

    @property
    def running_seconds(self) -> Decimal:
        return sum((r.running_seconds for r in self.rows), ZERO)

    @property
    def budget_with_grants(self) -> Decimal:
        return self.total_budget + self.course_grants + self.student_grants

    @property
    def reserved(self) -> Decimal:
        """What the course position holds back beyond spend: disks to term end and their grace, archives' retention,
        open archive-only runs (0 when the position was not read)."""
        return max(ZERO, self.committed - self.spent) if self.committed is not None else ZERO

    @property
    def available(self) -> Decimal:
        """The course total less what was spent and reserved, as launches are judged (less spend alone when the
        position was not read): grants come out of the total, they never add to it."""
        return self.total_budget - self.spent - self.reserved

    @property
    def percent(self) -> int:
        return percent_of(self.spent, self.total_budget)

    @property
    def effective_hourly(self) -> Decimal | None:
        return per_hour(self.spent, self.running_seconds)

    @property
    def anomalies(self) -> tuple[StudentRow, ...]:
        return tuple(sorted((r for r in self.rows if r.over_cap or r.anomaly), key=lambda r: -r.spent))


def is_anomaly(spent: Decimal, mid: Decimal) -> bool:
    """Spend several times the course median, and at least a dollar (the enforcement sweep's rule)."""
    return mid > 0 and spent >= ANOMALY_FLOOR and spent > ANOMALY_FACTOR * mid


def flag_anomalies(rows: list[StudentRow]) -> tuple[tuple[StudentRow, ...], Decimal]:
    """Mark each row against the median of the students with recorded spend; returns the rows and the median."""
    spenders = [r.spent for r in rows if r.has_spend]
    mid = Decimal(median(spenders)) if spenders else ZERO
    return tuple(replace(r, anomaly=is_anomaly(r.spent, mid)) for r in rows), mid


def week_of_term(term_start: date, day: date) -> int:
    """The term week a day falls in, weeks running Monday to Sunday from the term's first week (1-based)."""
    monday = term_start - timedelta(days=term_start.weekday())
    return (day - monday).days // 7 + 1


def term_progress(term_start: date | None, term_end: date | None, today: date) -> tuple[int, int] | None:
    """(this week of the term, weeks in the term), clamped to the term; None without term dates."""
    if term_start is None or term_end is None:
        return None
    total = week_of_term(term_start, term_end)
    return min(max(week_of_term(term_start, today), 1), total), total
