"""The staff dashboard's decisions: who needs help (flags), budget warnings, filtering and sorting. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

INACTIVE_DAYS = 3  # no activity for this long while a due date is this close
FAILED_STARTS = 2  # this many failed starts or launches in FLAG_WINDOW
FLAG_WINDOW = timedelta(days=7)  # failed starts and resets count this far back
BUDGET_WARN, BUDGET_FLAG = Decimal(75), Decimal(90)  # percent of the student's cap
PAGE_SIZE = 100  # rows a page shows: a 700-pixel LMS frame shows a dozen; "needs help first" puts them on page 1

FLAGS = {
    "inactive_before_due": f"no activity in {INACTIVE_DAYS} days, due date near",
    "failed_starts": "repeated failed starts",
    "budget_90": "budget above 90 %",
    "recent_reset": "workspace reset recently",
    "help_open": "open help request",
}
SORTS = ("name", "section", "state", "running_for", "last_activity", "budget", "help", "flags")
# The order states sort in: what is up first, then what is on its way, then what is down.
STATE_ORDER = ("running", "starting", "provisioning", "requested", "stopping", "hibernated", "stopped", "terminating")


@dataclass(frozen=True)
class StudentFacts:
    """What the dashboard loaded for one student."""

    person_id: int
    name: str
    email: str
    section: str
    state: str | None  # the most "up" live workspace's observed state, None without one
    state_since: datetime | None  # when that workspace entered its state
    last_activity: datetime | None
    spent: Decimal
    cap: Decimal
    open_help: int = 0
    help_id: int | None = None  # the unresolved request, if any
    failed_starts: int = 0  # in FLAG_WINDOW
    last_reset: datetime | None = None
    unread_by_student: int = 0
    unread_replies: int = 0


@dataclass(frozen=True)
class DashboardRow:
    """One student's row: the facts, the budget percentage and warning level, and the flags raised."""

    facts: StudentFacts
    budget_pct: Decimal
    budget_level: str  # "", "warn" or "bad"
    flags: tuple[str, ...]
    running_for: timedelta | None


@dataclass(frozen=True)
class DashboardQuery:
    """Filter and sort, as the page's form gives them (already validated)."""

    q: str = ""
    section: str = ""
    flag: str = ""
    state: str = ""
    sort: str = "flags"
    descending: bool = False
    sections: tuple[str, ...] = field(default=())


def budget_pct(spent: Decimal, cap: Decimal) -> Decimal:
    """Spend as a percentage of the cap, rounded down to 0.1 (100 when there is no cap and money was spent)."""
    if cap <= 0:
        return Decimal(100) if spent > 0 else Decimal(0)
    return (spent * 100 / cap).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)  # 89.96 % is not "90 %" yet


def budget_level(pct: Decimal) -> str:
    """ "bad" above the flag line, "warn" above the warning line, else ""."""
    return "bad" if pct >= BUDGET_FLAG else "warn" if pct >= BUDGET_WARN else ""


def flags_for(f: StudentFacts, now: datetime, due_soon: Sequence[datetime]) -> tuple[str, ...]:
    """The flags raised for one student; `due_soon` are the course's due dates within INACTIVE_DAYS from now."""
    raised = []
    quiet = f.last_activity is None or now - f.last_activity > timedelta(days=INACTIVE_DAYS)
    if quiet and any(now <= d <= now + timedelta(days=INACTIVE_DAYS) for d in due_soon):
        raised.append("inactive_before_due")
    if f.failed_starts >= FAILED_STARTS:
        raised.append("failed_starts")
    if budget_pct(f.spent, f.cap) >= BUDGET_FLAG:
        raised.append("budget_90")
    if f.last_reset is not None and now - f.last_reset <= FLAG_WINDOW:
        raised.append("recent_reset")
    if f.open_help:
        raised.append("help_open")
    return tuple(raised)


def build_rows(facts: Iterable[StudentFacts], now: datetime, due_soon: Sequence[datetime]) -> list[DashboardRow]:
    """Decide every student's row."""
    rows = []
    for f in facts:
        pct = budget_pct(f.spent, f.cap)
        running = now - f.state_since if f.state == "running" and f.state_since else None
        rows.append(DashboardRow(f, pct, budget_level(pct), flags_for(f, now, due_soon), running))
    return rows


def _matches(row: DashboardRow, words: list[str]) -> bool:
    text = f"{row.facts.name} {row.facts.email}".casefold()
    return all(w in text for w in words)


def _key(sort: str, now: datetime):  # type: ignore[no-untyped-def]  # noqa: ANN202 - a sort key of mixed tuples
    never = datetime.min.replace(tzinfo=now.tzinfo)
    keys = {
        "name": lambda r: (r.facts.name.casefold(),),
        "section": lambda r: (r.facts.section.casefold(), r.facts.name.casefold()),
        "state": lambda r: (STATE_ORDER.index(r.facts.state) if r.facts.state in STATE_ORDER else 99,),
        "running_for": lambda r: (-(r.running_for or timedelta(0)).total_seconds(),),
        "last_activity": lambda r: (r.facts.last_activity or never,),
        "budget": lambda r: (-r.budget_pct,),
        "help": lambda r: (-r.facts.open_help, r.facts.help_id or 0),
        "flags": lambda r: (-len(r.flags), -r.budget_pct),
    }
    base = keys.get(sort, keys["flags"])
    return lambda r: (*base(r), r.facts.name.casefold(), r.facts.person_id)


def select_rows(rows: list[DashboardRow], query: DashboardQuery, now: datetime) -> list[DashboardRow]:
    """Search (every word in the name or email), filter by section, flag and state, then sort."""
    words = query.q.casefold().split()
    kept = [
        r
        for r in rows
        if (not words or _matches(r, words))
        and (not query.section or r.facts.section == query.section)
        and (not query.flag or query.flag in r.flags)
        and (not query.state or (r.facts.state or "none") == query.state)
    ]
    return sorted(kept, key=_key(query.sort, now), reverse=query.descending)


def page_of(rows: list[DashboardRow], page: int, size: int = PAGE_SIZE) -> tuple[list[DashboardRow], int, int]:
    """The rows of one page (1-based; past the end: the last page), the page shown and the number of pages."""
    pages = max(1, -(-len(rows) // size))
    page = min(max(1, page), pages)
    return rows[(page - 1) * size : page * size], page, pages


def summary(rows: Sequence[DashboardRow]) -> dict[str, int]:
    """How many students carry each flag, and how many have a running workspace."""
    counts = {name: sum(1 for r in rows if name in r.flags) for name in FLAGS}
    counts["running"] = sum(1 for r in rows if r.facts.state == "running")
    return counts
