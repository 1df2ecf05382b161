"""May this student launch this template now? Fails closed: anything unknown refuses, with a clear message.

Longer than 300 lines because the checks, in their order, and the sentences each refusal gives (with the figures of
what a launch commits to) are the policy, and read best in one place; the disk-end figures are in disk_end.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from classroom.budget.disk_end import DiskEnd, after_term, archive_gb
from classroom.budget.hours import hours_between
from classroom.budget.runway import running_sentence, runway, term_days_left
from config.catalog import Catalog, WorkspaceTemplate
from config.prices import PriceError, RegionPrices

APPROVED, ON_REQUEST, BLOCKED = "approved", "on_request", "blocked"
SWEEP_INTERVAL_S = 60  # the enforcement sweep runs every minute
STOP_LATENCY_S = 120  # a stop or hibernation takes up to two minutes at AWS, billed while stopping


@dataclass(frozen=True)
class PolicyView:
    """The parts of a course's policy and term the launch check reads."""

    course_name: str
    templates: dict[str, str]
    default_template: str
    max_concurrent: int
    max_daily_cost: Decimal
    term_start: date | None
    term_end: date | None
    time_zone: str
    disk_end: DiskEnd | None  # how disks end after the term (None: the course has no term end to end them at)


@dataclass(frozen=True)
class StudentMoney:
    """A student's budget position: cap (budget plus grants), spent in total and today, running workspaces."""

    cap: Decimal
    spent: Decimal
    spent_today: Decimal
    running: int
    reserved: Decimal = Decimal(0)  # existing disks to term end and through their grace (disk_reserve), held back

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.cap - self.spent - self.reserved)

    @property
    def percent(self) -> int:
        return int((self.spent * 100 / self.cap).to_integral_value(ROUND_HALF_UP)) if self.cap > 0 else 100


@dataclass(frozen=True)
class CourseMoney:
    """The course's position: its total (the IT allocation) and what is committed (spent, reserved, shared)."""

    total: Decimal
    committed: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.total - self.committed)


@dataclass(frozen=True)
class Option:
    """A template as students see it: name, type, cost per day running (and its hourly parts)."""

    id: str
    name: str
    instance_type: str
    daily: Decimal
    hourly: Decimal = Decimal(0)  # compute and disk while running
    disk_hourly: Decimal = Decimal(0)  # the disk alone, billed while stopped too
    volume_gb: int = 0
    archive_hourly: Decimal = Decimal(0)  # its home archive in S3 (at most ARCHIVE_MAX_GB), after the term


@dataclass(frozen=True)
class Commitment:
    """What a launch commits to before the sweep can stop it: the new disk until term end, then through the
    course's grace period, its home archive in S3 for the retention, and running until one sweep interval plus
    the stop latency have passed. The archive is booked to the course, so the student's remainder covers
    `student` and the course's covers `total`."""

    disk: Decimal
    running: Decimal
    disk_hours: Decimal
    grace: Decimal = Decimal(0)
    archive: Decimal = Decimal(0)

    @property
    def student(self) -> Decimal:
        """What the student's ledger will be charged: all but the archive."""
        return self.disk + self.grace + self.running

    @property
    def total(self) -> Decimal:
        """What the course position commits: the student's part and the archive's retention."""
        return self.student + self.archive


@dataclass(frozen=True)
class Decision:
    """The answer, the reason code, a sentence for the student, and what they can do instead."""

    allowed: bool
    code: str
    message: str
    template: Option | None = None
    money: StudentMoney | None = None
    projection_days: Decimal | None = None
    projection: str = ""  # what running it 24/7 does to the budget, bounded by the term and the daily cap
    alternatives: list[Option] = field(default_factory=list)


def course_zone(time_zone: str) -> ZoneInfo | None:
    """The course's time zone, or None when Python does not know it: money checks then fail closed (the sweep
    stops the course's workspaces), and figures that must not abort other courses read its dates in UTC."""
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def term_end_at(term_end: date | None, time_zone: str) -> tuple[datetime | None, bool]:
    """The end of the term's last day in course time (None without a term end or a known zone), and whether the
    course's time zone is known at all."""
    zone = course_zone(time_zone)
    if zone is None:
        return None, False
    return (datetime.combine(term_end, time.max, zone) if term_end else None), True


def hours_until_term_end(term_end: date | None, time_zone: str, now: datetime) -> Decimal:
    """Hours from `now` to the end of the term's last day (course time), exact in Decimal; 0 without a term end."""
    if term_end is None:
        return Decimal(0)
    return hours_between(now, datetime.combine(term_end, time.max, ZoneInfo(time_zone)))


def option(t: WorkspaceTemplate, prices: RegionPrices) -> Option:
    """Describe a template with its daily cost from the price table."""
    disk = prices.storage_hourly(t.root_volume_gb)
    hourly = prices.running_hourly(t.instance_type) + disk
    archive = prices.archive_hourly(archive_gb(t.root_volume_gb))
    return Option(t.id, t.name, t.instance_type, hourly * 24, hourly, disk, t.root_volume_gb, archive)


def commitment(t: Option, hours_left: Decimal, *, new_disk: bool, end: DiskEnd | None = None) -> Commitment:
    """The money a launch (new_disk) or a restart commits to; see Commitment."""
    running = t.hourly * (SWEEP_INTERVAL_S + STOP_LATENCY_S) / 3600
    if not new_disk:
        return Commitment(Decimal(0), running, Decimal(0))
    grace, archive = after_term(t.disk_hourly, t.archive_hourly, hours_left, end)
    return Commitment(t.disk_hourly * hours_left, running, hours_left, grace, archive)


def projection_days(remaining: Decimal, daily: Decimal) -> Decimal:
    """Days of 24/7 running that the remaining budget pays for, to one decimal."""
    if daily <= 0:
        return Decimal("Infinity")
    return (remaining / daily).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _approved(policy: PolicyView, catalog: Catalog, prices: RegionPrices) -> list[Option]:
    found = [catalog.get(tid) for tid, access in sorted(policy.templates.items()) if access == APPROVED]
    return [option(t, prices) for t in found if t is not None]


def check_launch(
    policy: PolicyView | None,
    template_id: str,
    money: StudentMoney | None,
    *,
    catalog: Catalog,
    prices: RegionPrices,
    now: datetime,
    request_approved: bool = False,
    request_pending: bool = False,
    hours_left: Decimal = Decimal(0),
    new_disk: bool = True,
    course: CourseMoney | None = None,
) -> Decision:
    """Apply, in order: set-up, template access, term dates, budget (with what the launch commits to: the new
    disk until term end, `hours_left` from now; a sweep interval plus stop latency of running), the course
    total, daily cap, concurrency."""
    if policy is None:
        return Decision(
            False,
            "not_set_up",
            "Your instructor has not finished setting up Cloud Workstation for this "
            "course yet, so no workspace can start. Nothing was charged.",
        )
    template = catalog.get(template_id)
    try:
        chosen = option(template, prices) if template else None
        alternatives = _approved(policy, catalog, prices)
    except PriceError:
        chosen, alternatives = None, []
    if money is None or chosen is None:
        return Decision(
            False,
            "cannot_evaluate",
            "Cloud Workstation cannot check your budget for this workspace right "
            "now, so it will not start one. Please try again later or tell your TA.",
        )
    access = policy.templates.get(template_id, BLOCKED)
    need = commitment(chosen, hours_left, new_disk=new_disk, end=policy.disk_end)
    days, projection = project(policy, money, chosen, now, need=need)
    base = {"template": chosen, "money": money, "alternatives": alternatives, "projection": projection}
    if access == BLOCKED or (access == ON_REQUEST and not request_approved):
        code = "request_pending" if request_pending else ("needs_request" if access == ON_REQUEST else "blocked")
        return Decision(False, code, _access_message(code, chosen, policy.course_name), **base)  # type: ignore[arg-type]
    today = now.astimezone(ZoneInfo(policy.time_zone)).date()
    if policy.term_start and today < policy.term_start:
        return Decision(
            False, "term_not_started", f"The course's workspaces open on {policy.term_start:%B %-d, %Y}.", **base
        )  # type: ignore[arg-type]
    if policy.term_end and today > policy.term_end:
        return Decision(
            False, "term_ended", f"The term ended on {policy.term_end:%B %-d, %Y}; workspaces are closed.", **base
        )  # type: ignore[arg-type]
    if money.remaining <= chosen.daily / 1440:  # less than a minute of this workspace left: the sweep would stop it
        return Decision(
            False,
            "over_budget",
            "Your budget for this course is used up, so no workspace can start. "
            "Your files are kept. Ask your instructor if you need more.",
            **base,
        )  # type: ignore[arg-type]
    refusal = _commitment_refusal(need, money, course, chosen, policy)
    if refusal is not None:
        return Decision(False, refusal[0], refusal[1], **base)  # type: ignore[arg-type]
    if money.spent_today >= policy.max_daily_cost:
        return Decision(
            False,
            "daily_cap",
            "You reached today's spending limit for this course. Workspaces can start again tomorrow (course time).",
            **base,
        )  # type: ignore[arg-type]
    if money.running >= policy.max_concurrent:
        return Decision(
            False,
            "concurrency",
            f"You can run {policy.max_concurrent} workspace(s) at a time in this course. Stop another workspace first.",
            **base,
        )  # type: ignore[arg-type]
    return Decision(True, "ok", projection, projection_days=days, **base)  # type: ignore[arg-type]


def project(
    policy: PolicyView, money: StudentMoney, t: Option, now: datetime, *, need: Commitment | None = None
) -> tuple[Decimal | None, str]:
    """Days the remaining budget lasts running `t` 24/7 (None: past the term's end) and the sentence saying so.
    A new disk's part of the launch's commitment (`need`) is set aside first: it is no longer there to run with."""
    set_aside = need.disk + need.grace if need else Decimal(0)
    left = max(Decimal(0), money.remaining - set_aside)
    r = runway(
        left,
        t.daily,
        daily_cap=policy.max_daily_cost,
        term_days=term_days_left(now, policy.term_end, policy.time_zone),
    )
    sentence = running_sentence(r, money_text(policy.max_daily_cost))
    if set_aside > 0:
        end = policy.disk_end
        after = f" and the {end.grace_days} days it is kept after" if need and need.grace > 0 and end else ""
        sentence = (
            f"Its {t.volume_gb} GB disk sets aside {money_text(set_aside)} of the budget until the term ends{after}, "
            f"so {money_text(left)} is left for running it. {sentence}"
        )
    return (None if r.lasts_the_term else r.days), sentence


def _commitment_parts(need: Commitment, t: Option, end: DiskEnd | None, *, archive: bool) -> str:
    """What the launch commits to, part by part with its figure (the course's archive only when `archive`)."""
    parts = []
    if need.disk > 0:
        parts.append(f"its {t.volume_gb} GB disk until the term ends ({money(need.disk)})")
    if need.grace > 0 and end is not None:
        parts.append(f"the {end.grace_days} days the disk is kept after the term ({money(need.grace)})")
    if archive and need.archive > 0 and end is not None:
        parts.append(
            f"its home archive (up to {archive_gb(t.volume_gb)} GB) kept {end.retention_days} days in S3 "
            f"({money(need.archive)})"
        )
    parts.append(f"{(SWEEP_INTERVAL_S + STOP_LATENCY_S) // 60} minutes of running ({money(need.running)})")
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _commitment_refusal(
    need: Commitment, money_: StudentMoney, course: CourseMoney | None, t: Option, policy: PolicyView
) -> tuple[str, str] | None:
    """(code, message) when the student's remainder, or the course's, cannot cover what the launch commits to."""
    course_name = policy.course_name
    if money_.remaining < need.student:
        parts = _commitment_parts(need, t, policy.disk_end, archive=False)
        return (
            "over_budget",
            f"Starting {t.name} commits {money(need.student)}: {parts}. You have {money(money_.remaining)} left, "
            "so it will not start and nothing was charged. Your files are kept. Ask your instructor for more "
            "budget, or use a workspace with a smaller disk.",
        )
    if course is not None and course.remaining < need.total:
        parts = _commitment_parts(need, t, policy.disk_end, archive=True)
        return (
            "course_budget",
            f"{course_name}'s total budget of {money(course.total)} is committed ({money(course.committed)} spent "
            f"or reserved), and starting {t.name} would commit {money(need.total)} more: {parts}. No workspace can "
            "start until your instructor adds budget. Nothing was charged.",
        )
    return None


def _access_message(code: str, t: Option, course: str) -> str:
    if code == "blocked":
        return (
            f"{t.name} ({t.instance_type}, {money(t.daily)}/day) is not approved for {course}. "
            "If you need it, contact your instructor or TA."
        )
    if code == "request_pending":
        return f"Your request to use {t.name} is waiting for your instructor's decision."
    return (
        f"{t.name} ({t.instance_type}, {money(t.daily)}/day) needs your instructor's approval in {course}. "
        "Ask for it below, saying why you need it."
    )


def money(value: Decimal) -> str:
    """Dollars to the cent."""
    return "$" + str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


money_text = money  # for functions whose `money` parameter shadows the formatter
