"""The course's money position: the course total (the IT allocation) against what is committed, and what is
still unallocated. Read by the launch check, the grant form, the report and the minute's sweep.

committed = spent by every student + course lines (course_charges: shared EFS, snapshots, archives, transfer,
orphans) + every live disk's storage until term end, through the grace period (disk_grace_days), and its home
archive in S3 for the retention (archive_retention_days; reserved at the disk's size, at most ARCHIVE_MAX_GB, the
biggest archive the agent makes), all while the term is on (policy.after_term), + each open start for the
archive only (`archiving_until`; its run is the course's) at its instance's running price from the later of its
request and its last metering to the window's end, so a second start cannot pass on the remainder the first one
will use. An archive already booked as a
course line while its disk is still held counts twice until the disk goes: over, never under. allocated = the
per-student budget for each active student + every grant. Grants never raise the course total: they are
allocations out of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.budget.disk_end import after_term, disk_end_of
from classroom.budget.enforcement import CoursePosition
from classroom.budget.policy import CourseMoney, course_zone, hours_until_term_end
from classroom.models import Course, CoursePolicy
from classroom.sql.course_money import ALLOCATION_SQL, POSITION_SQL
from config.prices import PriceError, RegionPrices


@dataclass(frozen=True)
class Allocation:
    """How much of the course total is promised to students: base budgets of active students plus grants."""

    total: Decimal
    base: Decimal
    grants: Decimal
    students: int = 0  # active students, each allocated `per_student`
    per_student: Decimal = Decimal(0)

    @property
    def allocated(self) -> Decimal:
        return self.base + self.grants

    @property
    def unallocated(self) -> Decimal:
        """What is left to grant (negative: the course is over its IT allocation by that much)."""
        return self.total - self.allocated


def _hours_left(term_end: date | None, time_zone: str, now: datetime) -> Decimal:
    """Hours to term end; a zone Python does not know is read as UTC here (its rows are stopped by the sweep's
    unknown-zone rule) so one such course never aborts the sweep for every other course."""
    return hours_until_term_end(term_end, time_zone if course_zone(time_zone) else "UTC", now)


def course_positions(
    session: Session, now: datetime, prices: RegionPrices, course_id: int | None = None
) -> list[CoursePosition]:
    """Every set-up course's total and committed money (or one course's)."""
    out = []
    for r in session.execute(POSITION_SQL, {"course": course_id, "now": now}):
        hours = _hours_left(r.term_end, r.time_zone, now)
        end = disk_end_of(r.term_end, r.disk_grace_days, r.archive_retention_days)
        storage = prices.storage_hourly(int(r.disk_gb))
        grace, archive = after_term(storage, prices.archive_hourly(int(r.archive_gb)), hours, end)
        reserve = storage * hours + grace + archive + _windows(prices, r.window_types, r.window_secs)
        out.append(CoursePosition(r.course_id, Decimal(r.total), Decimal(r.spent) + Decimal(r.charges) + reserve))
    return out


def _windows(prices: RegionPrices, types: list[str], secs: list[Decimal]) -> Decimal:
    """The open archive-only windows' running not yet metered; a type without a price at the dearest running price
    (fail closed)."""
    dearest = max(prices.instance_hourly.values(), default=Decimal(0)) + prices.public_ipv4_hourly
    total = Decimal(0)
    for instance_type, seconds in zip(types, secs, strict=True):
        try:
            hourly = prices.running_hourly(instance_type)
        except PriceError:
            hourly = dearest
        total += hourly * Decimal(seconds) / 3600
    return total


def course_money(session: Session, course: Course, now: datetime, prices: RegionPrices) -> CourseMoney | None:
    """The course's position for the launch check; None without a policy."""
    found = course_positions(session, now, prices, course.id)
    return CourseMoney(found[0].total, found[0].committed) if found else None


def lock_course_money(session: Session, course_id: int) -> None:
    """Lock the course's policy row: it serialises what is judged against the course's remainder and then
    committed (grants, starts for the archive only, the term end's lockouts), so two cannot both fit the same
    remainder. Take it before any workspace row of the course (one lock order)."""
    session.execute(select(CoursePolicy.course_id).where(CoursePolicy.course_id == course_id).with_for_update())


def allocation(session: Session, course_id: int) -> Allocation | None:
    """The course's allocation; None without a policy."""
    r = session.execute(ALLOCATION_SQL, {"course": course_id}).one_or_none()
    if r is None:
        return None
    return Allocation(Decimal(r.total), Decimal(r.base), Decimal(r.grants), int(r.students), Decimal(r.per_student))
