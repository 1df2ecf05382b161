"""Time as money's multiplier: exact Decimal hours between two instants, never through float (a float's binary
noise would reach the cents of a reserve or a charge). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

MICROS_PER_HOUR = Decimal(3_600_000_000)


def hours_between(start: datetime, end: datetime) -> Decimal:
    """Exact hours from start to end (0 when end is not after start)."""
    return Decimal(max(0, (end - start) // timedelta(microseconds=1))) / MICROS_PER_HOUR
