"""Costs booked to the course rather than to a student (course_charges), from the one price table.

- orphan instances carrying our tags (no live workspace): compute and public IPv4 from AWS's LaunchTime to the
  moment the tool stops them;
- the course's shared EFS file system, EBS snapshots and S3 archives: GB-month prices, per booking period;
- data transfer out: GB from CloudWatch NetworkOut (locally, published there by the runtime from its SSH counters).

Pure figure functions, and one statement that books them (`classroom.sql.course_money.BOOK_SQL`); (course, kind,
ref, period start) is unique, so a retried or duplicated booking counts once. A line attributed to a student
(person_id: their workspace's transfer out) is also added to their spend_daily, in the same statement, so it counts
against their cap and, through spend_totals, in the course position once. Flushes, never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from classroom.budget.hours import hours_between
from classroom.services.metering import known_time_zones
from classroom.sql.course_money import BOOK_SQL
from config.prices import HOURS_PER_MONTH, RegionPrices

GB = Decimal(1024**3)


@dataclass(frozen=True)
class Charge:
    """One line of cost booked to a course."""

    course_id: int
    kind: str  # efs | snapshot | archive | transfer | orphan
    ref: str
    period_start: datetime
    period_end: datetime
    quantity: Decimal
    amount: Decimal
    person_id: int | None = None  # the student it is attributed to (then also in their spend_daily)


def course_id_of(tags: dict[str, str]) -> int | None:
    """The course id from an instance's cwc:course tag ("c42"), or None."""
    raw = tags.get("cwc:course", "")
    return int(raw[1:]) if raw.startswith("c") and raw[1:].isdigit() else None


def orphan_charge(
    course_id: int, instance_id: str, instance_type: str, launched: datetime, now: datetime, prices: RegionPrices
) -> Charge:
    """An orphan's running cost (compute and public IPv4) from its launch until now, in instance-seconds."""
    hours = hours_between(launched, now)
    return Charge(
        course_id, "orphan", instance_id, launched, now, hours * 3600, prices.running_hourly(instance_type) * hours
    )


def storage_charge(
    course_id: int, kind: str, ref: str, start: datetime, end: datetime, size_bytes: int, gb_month: Decimal
) -> Charge:
    """Stored bytes over a period at a GB-month price (AWS's 730-hour month), in GB-hours."""
    gb_hours = Decimal(size_bytes) / GB * hours_between(start, end)
    return Charge(course_id, kind, ref, start, end, gb_hours, gb_hours * gb_month / HOURS_PER_MONTH)


def transfer_charge(
    course_id: int,
    ref: str,
    start: datetime,
    end: datetime,
    out_bytes: int,
    prices: RegionPrices,
    person_id: int | None = None,
) -> Charge:
    """Data sent to the internet over a period, in GB (attributed to a student when person_id is given)."""
    gb = Decimal(out_bytes) / GB
    return Charge(course_id, "transfer", ref, start, end, gb, gb * prices.transfer_out_gb, person_id)


def book(session: Session, charges: Sequence[Charge], now: datetime) -> int:
    """Book the charges (each once); returns how many were new."""
    if not charges:
        return 0
    rows = session.execute(
        BOOK_SQL,
        {
            "courses": [c.course_id for c in charges],
            "people": [c.person_id for c in charges],
            "kinds": [c.kind for c in charges],
            "refs": [c.ref[:255] for c in charges],
            "starts": [c.period_start for c in charges],
            "ends": [c.period_end for c in charges],
            "qty": [c.quantity.quantize(Decimal("0.000001")) for c in charges],
            "amounts": [c.amount for c in charges],
            "ats": [now] * len(charges),
            "zones": list(known_time_zones(session)),
        },
    ).all()
    return len(rows)
