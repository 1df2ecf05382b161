"""Workshop rules: access codes, phases, the money split, extensions and the end plan (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from classroom.workshops import (
    Phase,
    access_until,
    code_hash,
    extensions_left,
    new_code,
    normalise_code,
    per_participant,
    phase,
    plan_end,
)

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=3)


def test_codes_carry_at_least_80_random_bits_and_survive_loose_typing():
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    code = codes.pop()
    assert len(normalise_code(code)) * math.log2(32) >= 80
    assert code_hash(code.lower().replace("-", " ")) == code_hash(code) != code_hash(new_code())
    assert normalise_code("ab-01 89=") == "AB"  # 0, 1, 8, 9 and punctuation are not in the alphabet


def test_phase_opens_an_hour_before_and_the_extension_follows_the_end():
    assert phase(START, END, 7, START - timedelta(hours=1, seconds=1)) is Phase.UPCOMING
    assert phase(START, END, 7, START - timedelta(minutes=59)) is Phase.OPEN
    assert phase(START, END, 7, END) is Phase.EXTENSION
    assert phase(START, END, 0, END) is Phase.OVER
    assert phase(START, END, 7, END + timedelta(days=7)) is Phase.OVER
    assert access_until(END, 7, True) == END + timedelta(days=7) and access_until(END, 7, False) == END


def test_budget_is_shared_rounded_down_and_extensions_fit_the_allowance():
    assert per_participant(Decimal(150), 30) == Decimal("5.00")
    assert per_participant(Decimal(100), 3) == Decimal("33.33")  # never more than the total
    assert extensions_left(Decimal(50), Decimal(1), 7, 0) == 7
    assert extensions_left(Decimal(50), Decimal(1), 7, 7) == 0
    assert extensions_left(Decimal(50), Decimal(1), 0, 0) == 0


def test_end_plan_ends_once_then_purges_after_the_extension():
    assert plan_end(END, 7, False, False, END - timedelta(seconds=1)) == (False, False)
    plan = plan_end(END, 7, False, False, END)
    assert plan.end and not plan.purge
    assert plan_end(END, 7, True, False, END + timedelta(days=6)) == (False, False)
    assert plan_end(END, 7, True, False, END + timedelta(days=7)) == (False, True)
    assert plan_end(END, 0, False, False, END) == (True, True)  # no extension: both at the end
