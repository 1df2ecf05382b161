"""Workshop rules (pure): access codes, when joining is open, the money split, and what the end pass must do.

Why a workshop is a course of its own: every guard a course has then applies unchanged to a workshop's
workspaces — the launch decision (approved template, per-participant cap, the course total, concurrency), the
minute's sweep (budget, daily cap, idle stop, "term over"), the reconciler, archiving and removal, the audit
chain per course. The workshop row adds only what a course has no word for: a start and end to the minute, the
participant cap, the access code, and the optional "keep learning" extension. The course's last day is the
workshop's last possible day (its end plus the extension), so the sweep's "term over" stop is the backstop; the
workshop end pass (provisioning/workshop_end.py) acts to the minute at `ends_at` and at `ends_at + extension`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import secrets
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

CODE_BYTES = 11  # 88 random bits (at least 80): 18 base-32 characters, shown in groups of four
JOIN_OPENS_BEFORE = timedelta(hours=1)  # walk-ins may join (and start) from an hour before the start
CENT = Decimal("0.01")


class Phase(enum.StrEnum):
    """Where a workshop is in its life at a given instant."""

    UPCOMING = "upcoming"  # joining not open yet
    OPEN = "open"  # joining open, workspaces run
    EXTENSION = "extension"  # ended; participants who chose the extension keep their workspace
    OVER = "over"  # everything is (being) archived and removed


def new_code() -> str:
    """A fresh access code, e.g. `K7QD-2MFA-...`: 88 random bits in base 32 (no 0/1/8/9 to misread)."""
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode().rstrip("=")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalise_code(typed: str) -> str:
    """What a participant typed, as compared: upper case, no spaces or dashes, only base-32 letters kept."""
    return "".join(ch for ch in typed.upper() if ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")[:64]


def code_hash(typed: str) -> str:
    """The SHA-256 stored and looked up for a code (of its normalised form)."""
    return hashlib.sha256(normalise_code(typed).encode()).hexdigest()


def access_until(ends_at: datetime, extension_days: int, extension: bool) -> datetime:
    """Until when a participant keeps their workspace: the end, or the end plus the extension they chose."""
    return ends_at + timedelta(days=extension_days) if extension else ends_at


def phase(starts_at: datetime, ends_at: datetime, extension_days: int, now: datetime) -> Phase:
    """The workshop's phase at `now`."""
    if now < starts_at - JOIN_OPENS_BEFORE:
        return Phase.UPCOMING
    if now < ends_at:
        return Phase.OPEN
    if now < ends_at + timedelta(days=extension_days):
        return Phase.EXTENSION
    return Phase.OVER


def per_participant(budget: Decimal, max_participants: int) -> Decimal:
    """Each participant's cap: the budget shared evenly, rounded down to the cent (never more than the total)."""
    return (budget / max_participants).quantize(CENT, rounding=ROUND_DOWN)


def extension_cost(daily_price: Decimal, days: int) -> Decimal:
    """What one participant's extension is set aside from the allowance."""
    return (daily_price * days).quantize(CENT)


def extensions_left(allowance: Decimal, daily_price: Decimal, days: int, taken: int) -> int:
    """How many more extensions the allowance pays for."""
    cost = extension_cost(daily_price, days)
    if days == 0 or cost <= 0:
        return 0
    return max(0, int(allowance // cost) - taken)


class EndPlan(NamedTuple):
    """What the end pass does for a workshop now: end it (stop all, retire the ones without extension, report)
    and/or purge it (retire everything left)."""

    end: bool
    purge: bool


def plan_end(ends_at: datetime, extension_days: int, ended: bool, purged: bool, now: datetime) -> EndPlan:
    """Decide the end pass for one workshop (each step once)."""
    end = not ended and now >= ends_at
    purge = not purged and now >= ends_at + timedelta(days=extension_days)
    return EndPlan(end, purge)
