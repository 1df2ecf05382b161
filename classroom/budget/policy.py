"""May this student launch this template now? Fails closed: anything unknown refuses, with a clear message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from classroom.budget.runway import running_sentence, runway, term_days_left
from config.catalog import Catalog, WorkspaceTemplate
from config.prices import PriceError, RegionPrices

APPROVED, ON_REQUEST, BLOCKED = "approved", "on_request", "blocked"


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


@dataclass(frozen=True)
class StudentMoney:
    """A student's budget position: cap (budget plus grants), spent in total and today, running workspaces."""

    cap: Decimal
    spent: Decimal
    spent_today: Decimal
    running: int
    reserved: Decimal = Decimal(0)  # storage of existing disks until term end, held back from the budget

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.cap - self.spent - self.reserved)

    @property
    def percent(self) -> int:
        return int((self.spent * 100 / self.cap).to_integral_value(ROUND_HALF_UP)) if self.cap > 0 else 100


@dataclass(frozen=True)
class Option:
    """A template as students see it: name, type, cost per day running."""

    id: str
    name: str
    instance_type: str
    daily: Decimal


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


def option(t: WorkspaceTemplate, prices: RegionPrices) -> Option:
    """Describe a template with its daily cost from the price table."""
    return Option(t.id, t.name, t.instance_type, prices.daily(t.instance_type, t.root_volume_gb))


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
) -> Decision:
    """Apply, in order: set-up, template access, term dates, budget, daily cap, concurrency."""
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
    days, projection = project(policy, money, chosen, now)
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


def project(policy: PolicyView, money: StudentMoney, t: Option, now: datetime) -> tuple[Decimal | None, str]:
    """Days the remaining budget lasts running `t` 24/7 (None: past the term's end) and the sentence saying so."""
    r = runway(
        money.remaining,
        t.daily,
        daily_cap=policy.max_daily_cost,
        term_days=term_days_left(now, policy.term_end, policy.time_zone),
    )
    return (None if r.lasts_the_term else r.days), running_sentence(r, money_text(policy.max_daily_cost))


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
