"""The hourly course-usage booking: what a course stores (EFS, snapshots, S3 archives) and what its workspaces
send out (CloudWatch NetworkOut), read from AWS and booked as course lines since the last booking.

Per course: EFS, snapshots and archives (GB-hours at their GB-month prices), and the transfer out of staff
workspaces. Per student: the transfer out of a student's workspace (a line carrying person_id, also added to the
student's spend_daily). Each line runs from where that (course, kind, resource) was last booked (or from the
resource's creation) to the last whole hour; (course, kind, ref, period start) is unique, so a retried or
overlapping run books nothing twice. Storage is priced at the size read now for the whole period (AWS bills the
hourly average; the difference is the growth within the period). No row lock is held across an AWS call: rows
are read and the session committed, AWS is read, then the lines are booked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.jobs.context import current
from classroom.models import CourseCharge, CourseCloud, Enrollment, Workspace
from classroom.roles import StaffLevel
from classroom.services.course_charges import Charge, book, storage_charge, transfer_charge
from classroom.workspaces.lifecycle import BILLING_COMPUTE, LIVE
from config.prices import RegionPrices, load_prices
from provisioning.aws_usage import StoredItem
from provisioning.backend import CloudBackend, CloudError
from provisioning.course_cloud import course_key

log = logging.getLogger(__name__)
Last = dict[tuple[int, str, str], datetime]  # (course, kind, ref) -> end of its last booked period


@dataclass(frozen=True)
class Sender:
    """A workspace's instance whose traffic is booked: to its student, or to the course (person None)."""

    course_id: int
    instance_id: str
    person_id: int | None
    since: datetime  # the workspace's creation: nothing was sent before
    sending: bool  # running (or stopping) now
    changed_at: datetime  # its last state change: a stopped instance sent nothing after it


def hour_floor(at: datetime) -> datetime:
    """The start of the hour `at` is in: each booking ends on a whole hour, so periods line up."""
    return at.replace(minute=0, second=0, microsecond=0)


def gb_month_price(kind: str, prices: RegionPrices) -> Decimal:
    """The price per GB-month of a stored kind, from the one price table."""
    return {"efs": prices.efs_gb_month, "snapshot": prices.snapshot_gb_month, "archive": prices.s3_gb_month}[kind]


def storage_lines(
    course_id: int, items: list[StoredItem], last: Last, end: datetime, prices: RegionPrices
) -> list[Charge]:
    """A line per stored item from its last booking (or its creation) to `end`; nothing for an empty period."""
    out = []
    for item in items:
        start = last.get((course_id, item.kind, item.ref), item.since)
        if start < end:
            price = gb_month_price(item.kind, prices)
            out.append(storage_charge(course_id, item.kind, item.ref, start, end, item.size_bytes, price))
    return out


def transfer_window(sender: Sender, last: Last, end: datetime) -> tuple[datetime, datetime] | None:
    """The period to read an instance's NetworkOut for; None when there is none or it cannot have sent anything
    (not running and unchanged since the last booking)."""
    start = last.get((sender.course_id, "transfer", sender.instance_id), hour_floor(sender.since))
    if start >= end or not (sender.sending or sender.changed_at > start):
        return None
    return start, end


def _read_rows(session: Session) -> tuple[list[tuple[int, str]], list[Sender], Last]:
    clouds = [(c.course_id, c.file_system_id) for c in session.scalars(select(CourseCloud))]
    students = select(Enrollment.id).where(
        Enrollment.course_id == Workspace.course_id,
        Enrollment.person_id == Workspace.person_id,
        Enrollment.level == StaffLevel.STUDENT,
    )
    rows = session.execute(
        select(Workspace, students.exists().label("student")).where(
            Workspace.instance_id.is_not(None), Workspace.state.in_(LIVE)
        )
    ).all()
    senders = [
        Sender(
            w.course_id,
            w.instance_id,
            w.person_id if is_student else None,
            w.created_at,
            w.state in BILLING_COMPUTE,
            w.state_changed_at,
        )  # fmt: skip
        for w, is_student in rows
    ]
    last = {
        (c, k, r): e
        for c, k, r, e in session.execute(
            select(CourseCharge.course_id, CourseCharge.kind, CourseCharge.ref, func.max(CourseCharge.period_end))
            .where(CourseCharge.kind.in_(("efs", "snapshot", "archive", "transfer")))
            .group_by(CourseCharge.course_id, CourseCharge.kind, CourseCharge.ref)
        )
    }
    return clouds, senders, last


def collect(
    backend: CloudBackend, clouds: list[tuple[int, str]], senders: list[Sender], last: Last, end: datetime,
    prices: RegionPrices,
) -> tuple[list[Charge], int]:  # fmt: skip
    """Read sizes and traffic from AWS (no transaction open); returns the lines and how many reads failed."""
    lines: list[Charge] = []
    failed = 0
    for course_id, fs_id in clouds:
        try:
            lines += storage_lines(course_id, backend.course_stored(course_key(course_id), fs_id), last, end, prices)
        except CloudError:
            failed += 1
            log.exception("storage of course %s not read; the next run books from the same start", course_id)
    for s in senders:
        window = transfer_window(s, last, end)
        if window is None:
            continue
        try:
            sent = backend.network_out(s.instance_id, *window)
        except CloudError:
            failed += 1
            log.exception("traffic of %s not read; the next run books from the same start", s.instance_id)
            continue
        lines.append(transfer_charge(s.course_id, s.instance_id, *window, sent, prices, s.person_id))
    return lines, failed


def book_course_usage(session: Session, backend: CloudBackend, now: datetime, prices: RegionPrices) -> dict[str, int]:
    """Read, call AWS, book: the whole hourly run on one session (commits after reading and after booking)."""
    clouds, senders, last = _read_rows(session)
    session.commit()
    lines, failed = collect(backend, clouds, senders, last, hour_floor(now), prices)
    booked = book(session, lines, now)
    session.commit()
    return {"courses": len(clouds), "lines": booked, "failed": failed}


def book_usage_hourly() -> dict[str, int]:
    """The periodic job: book every course's EFS, snapshots, archives and transfer out up to the last hour."""
    ctx = current()
    with ctx.session() as session:
        return book_course_usage(session, ctx.backend, utcnow(), load_prices().region(ctx.settings.aws_region))
