"""How long a budget lasts: bounded by the term's end and by the daily cap. Pure: no I/O, Decimal money.

A projection never runs past the term (a budget that outlasts it is "enough for the rest of the term"), and a
workspace cannot spend more in a day than the course's daily cap lets it (the sweep stops it there), so the pace
is the smaller of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

ZERO = Decimal(0)
DAY_S = Decimal(86400)
TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Runway:
    """The remaining budget against a daily pace: days it lasts, days the term has left, what set the pace."""

    days: Decimal | None  # None: nothing is spent at this pace
    term_days: Decimal | None  # None: no term end known
    pace: Decimal  # dollars a day actually spent: the rate, or the daily cap when lower
    capped: bool  # the daily cap, not the rate, sets the pace

    @property
    def lasts_the_term(self) -> bool:
        """The budget outlasts the term (or nothing is spent and the term ends at some point)."""
        if self.term_days is None:
            return False
        return self.days is None or self.days >= self.term_days


def term_days_left(now: datetime, term_end: date | None, time_zone: str) -> Decimal | None:
    """Days from now to the end of the term's last day in course time (0 once it is over); None without an end."""
    if term_end is None:
        return None
    end = datetime.combine(term_end + timedelta(days=1), time(), ZoneInfo(time_zone))
    return max(ZERO, Decimal(int((end - now).total_seconds())) / DAY_S)


def runway(remaining: Decimal, per_day: Decimal, *, daily_cap: Decimal, term_days: Decimal | None) -> Runway:
    """Days `remaining` lasts spending `per_day`, at most `daily_cap` a day (a cap of 0 or less: no cap)."""
    capped = daily_cap > 0 and per_day > daily_cap
    pace = daily_cap if capped else per_day
    days = (max(ZERO, remaining) / pace).quantize(TENTH, rounding=ROUND_HALF_UP) if pace > 0 else None
    return Runway(days, term_days, pace, capped)


def whole_days(value: Decimal) -> int:
    """Days rounded down, for "the term ends in N days"."""
    return int(value)


def running_sentence(r: Runway, cap_text: str) -> str:
    """What a workspace left running 24/7 does to the budget (the launch check's and the request's projection):
    read by the student and, in a request, by the instructors, so it names no one as "you"."""
    limit = f" (the course's daily limit of {cap_text} stops it each day)" if r.capped else ""
    if r.lasts_the_term:
        assert r.term_days is not None
        return (
            f"Even left running 24/7{limit}, the budget is enough for the rest of the term "
            f"(it ends in {_days_phrase(r.term_days)})."
        )
    return f"This workspace would use the rest of the budget in about {r.days} days if left running 24/7{limit}."


def pace_sentence(r: Runway, burn_text: str) -> str:
    """The budget page's "at your current pace" (the average spend of the last days)."""
    if r.days is None:
        return "No recent use: nothing spent in the last 7 days, so your budget is not going down."
    if r.lasts_the_term:
        return f"Enough for the rest of the term at your current pace ({burn_text} a day over the last 7 days)."
    return f"About {r.days} days left (you spent {burn_text} a day on average over the last 7 days)."


def _days_phrase(days: Decimal) -> str:
    n = whole_days(days)
    return "less than a day" if n < 1 else ("1 day" if n == 1 else f"{n} days")
