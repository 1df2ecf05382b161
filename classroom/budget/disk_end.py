"""How a disk ends after the term, in money: kept through the course's grace period (EBS storage, billed to the
student's ledger until the disk is deleted), and its home archived to S3 for the course's retention (booked to the
course as an "archive" line at the archive's size, never to the student). While the term is on, the student's
reserve (the launch check, the student's figures, the sweep) holds what the student's ledger will be charged, the
storage to term end and through the grace (`disk_reserve`); the course position holds that and the archive's
retention too (`after_term`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from config.prices import RegionPrices

TERM_END_ACTOR = "term-end"  # the closure's actor: its retirement marks carry it (`retire_by`)
GRACE_DAYS, RETENTION_DAYS = 14, 365  # a course's defaults: term end to deleting the disks; the archives' life
ARCHIVE_MAX_GB = 5  # the biggest home archive (S3's single PUT): a bigger home is refused by the agent, disk kept


@dataclass(frozen=True)
class DiskEnd:
    """What a disk still costs once the term is over: it is kept `grace_days` (billed as EBS storage, to the
    student's ledger) before it is deleted, and its home archive is kept in S3 for `retention_days` (the bucket's
    lifecycle rule; booked to the course as an "archive" line at the archive's size, at most ARCHIVE_MAX_GB)."""

    grace_days: int
    retention_days: int


def archive_gb(volume_gb: int) -> int:
    """The archive size reserved for a disk: the whole disk, or the biggest archive there can be if smaller."""
    return min(volume_gb, ARCHIVE_MAX_GB)


def after_term(
    storage_hourly: Decimal, archive_hourly: Decimal, hours_left: Decimal, end: DiskEnd | None
) -> tuple[Decimal, Decimal]:
    """(grace storage, archive storage) one disk will still cost after the term: reserved only while the term is
    on (`hours_left` > 0; afterwards the ledger books them as they accrue and nothing can launch)."""
    if end is None or hours_left <= 0:
        return Decimal(0), Decimal(0)
    return storage_hourly * 24 * end.grace_days, archive_hourly * 24 * end.retention_days


def disk_reserve(prices: RegionPrices, volume_gb: int, hours_left: Decimal, end: DiskEnd | None) -> Decimal:
    """What one existing disk will still cost its student: its storage to term end and through the grace (its
    archive's retention is the course's: reserved in the course position only)."""
    storage = prices.storage_hourly(volume_gb)
    grace, _course_archive = after_term(storage, Decimal(0), hours_left, end)
    return storage * hours_left + grace


def disk_end_of(term_end: date | None, grace_days: int, retention_days: int) -> DiskEnd | None:
    """How a course's disks end after its term (None without a term end: nothing ends them then)."""
    return DiskEnd(grace_days, retention_days) if term_end else None
