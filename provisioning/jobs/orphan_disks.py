"""Orphan instances' disks, on each reconcile pass: book their EBS storage to the course named by their tag, and
terminate an orphan (its DeleteOnTermination volumes go with it) once it has been stopped for the course's disk
grace period. Only orphans whose `cwc:course` tag names a course of this database are handled here (reconcile
leaves the others alone: they may be another installation's), and one is terminated only if its
`cwc:workspace-id` tag names a workspace row of this database, of that course.

Booking follows the hourly usage job's rule: each volume's line runs from where it was last booked (or from its
CreateTime) to the last whole hour, kind `orphan`, ref the volume id, never before the end of a workspace row that
references the instance (a "missing" instance marked ended that reappeared: the student's ledger holds its storage
until then); (course, kind, ref, period start) is unique,
so retried or overlapping passes book nothing twice. When an orphan is terminated its last line runs to now, and it
is terminated only if that line (or a concurrent pass's, ending as late) is in. If DescribeVolumes fails nothing is
booked and the next pass books from the same start.

Stopped since: the tool tags an orphan `cwc:orphan-stopped-at` when it stops it, or when it first sees it stopped
without that tag; a value older than the instance's LaunchTime (a copied tag, or a restart since) does not count.
An orphan's workspace row has ended without naming it (a launch that failed after RunInstances, say), so no
student's home is known to be on it; right before the TerminateInstances call (no row lock held) the workspaces
are read again, and one that any row references by instance id, or whose tagged workspace is live, is left alone;
one whose tagged workspace is no row of its course here is left alone too, audited once as
`workspace.orphan_kept` and logged as an error. An orphan with a volume that would survive
termination (DeleteOnTermination false, so somebody attached it on purpose) is kept and reported once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.disk_end import GRACE_DAYS
from classroom.db import utcnow
from classroom.jobs.context import JobContext
from classroom.models import Course, CourseCharge, CoursePolicy, Workspace
from classroom.services.course_charges import Charge, book, course_id_of, storage_charge
from classroom.workspaces.lifecycle import LIVE
from config.prices import RegionPrices, load_prices
from provisioning.backend import CloudError, InstanceInfo, VolumeInfo
from provisioning.usage import Last, hour_floor

log = logging.getLogger(__name__)
STOPPED_AT = "cwc:orphan-stopped-at"
WITH_DISK = ("pending", "running", "stopping", "stopped")  # AWS states in which an instance keeps its volumes
GiB = 1024**3


def stopped_since(orphan: InstanceInfo) -> datetime | None:
    """When the tool saw this orphan stopped (its tag), or None if untagged or tagged before its latest start."""
    try:
        at = datetime.fromisoformat(orphan.tags.get(STOPPED_AT, ""))
    except ValueError:
        return None
    if at.tzinfo is None or (orphan.launched_at is not None and at < orphan.launched_at):
        return None
    return at


def grace_over(orphan: InstanceInfo, grace_days: int, now: datetime) -> bool:
    """True once a stopped orphan has been stopped for the grace period."""
    since = stopped_since(orphan)
    return orphan.state == "stopped" and since is not None and now - since >= timedelta(days=grace_days)


def volume_lines(
    course_id: int,
    volumes: Sequence[VolumeInfo],
    last: Last,
    end: datetime,
    prices: RegionPrices,
    fallback: datetime,
    not_before: datetime | None = None,
) -> list[Charge]:
    """A line per volume from its last booking (or its creation, else `fallback`), and not before `not_before` (a
    student's ledger holds the storage until then), to `end`, at its type's price."""
    out = []
    for v in volumes:
        start = last.get((course_id, "orphan", v.volume_id), v.created_at or fallback)
        start = max(start, not_before) if not_before is not None else start
        if start < end:
            price = prices.ebs_gb_month_of(v.volume_type)
            out.append(storage_charge(course_id, "orphan", v.volume_id, start, end, v.size_gb * GiB, price))
    return out


def settle_orphan_disks(ctx: JobContext, orphans: list[InstanceInfo], stopped_now: set[str]) -> dict[str, int]:
    """Tag newly stopped orphans, book every orphan's volume storage, terminate those past their grace."""
    orphans = [o for o in orphans if o.state in WITH_DISK]
    if not orphans:
        return {"volume_lines": 0, "terminated": 0}
    now = utcnow()
    _mark_stopped(ctx, orphans, stopped_now, now)
    try:
        volumes = ctx.backend.attached_volumes(orphans)
    except CloudError:
        log.exception("volumes of orphan instances not read; nothing booked, the next reconcile books them")
        return {"volume_lines": 0, "terminated": 0}
    with ctx.session() as session:
        lines, due = _book_volumes(session, ctx, orphans, volumes, now)
        session.commit()
    return {"volume_lines": lines, "terminated": _terminate(ctx, due, volumes)}


def _mark_stopped(ctx: JobContext, orphans: list[InstanceInfo], stopped_now: set[str], now: datetime) -> None:
    """Tag the orphans stopped by this pass, and stopped ones not validly tagged yet, as stopped from now."""
    ids = [
        o.instance_id
        for o in orphans
        if o.instance_id in stopped_now or (o.state in ("stopping", "stopped") and stopped_since(o) is None)
    ]
    try:
        ctx.backend.tag_instances(ids, {STOPPED_AT: now.isoformat()})
    except CloudError:
        log.exception("orphans %s not tagged as stopped; the next reconcile tags them (their grace starts then)", ids)


def _book_volumes(
    session: Session, ctx: JobContext, orphans: list[InstanceInfo], volumes: dict[str, list[VolumeInfo]], now: datetime
) -> tuple[int, list[tuple[InstanceInfo, int]]]:
    """Book the orphans' storage; returns how many lines were new and the (orphan, grace days) due to terminate."""
    prices = load_prices().region(ctx.settings.aws_region)
    wanted = {c for o in orphans if (c := course_id_of(o.tags)) is not None}
    graces = dict(
        session.execute(
            select(Course.id, func.coalesce(CoursePolicy.disk_grace_days, GRACE_DAYS))
            .outerjoin(CoursePolicy, CoursePolicy.course_id == Course.id)
            .where(Course.id.in_(wanted))
        ).all()
    )
    orphans = [o for o in orphans if course_id_of(o.tags) in graces]  # never act on another installation's
    refs = [v.volume_id for vs in volumes.values() for v in vs]
    last = _last_booked(session, refs)
    ledger_until = _students_ledger_until(session, [o.instance_id for o in orphans], now)
    due, lines = [], []
    for o in orphans:
        course = course_id_of(o.tags)
        grace = graces[course]
        ending = grace_over(o, grace, now) and o.instance_id in volumes
        end = now if ending else hour_floor(now)
        after = ledger_until.get(o.instance_id)
        lines += volume_lines(course, volumes.get(o.instance_id, []), last, end, prices, o.launched_at or now, after)  # type: ignore[arg-type]
        if ending:
            due.append((o, grace))
    new = book(session, lines, now)
    booked = _last_booked(session, refs)  # a concurrent pass may have booked a shorter line from the same start
    ready = []
    for o, grace in due:
        vols = volumes[o.instance_id]
        course = course_id_of(o.tags)
        if any(booked.get((course, "orphan", v.volume_id), now) < now for v in vols):
            continue  # its last storage is not all booked: the next pass books the rest, then terminates
        if any(not v.delete_on_termination for v in vols):
            _tell_kept(session, ctx, o, vols)
            continue
        ready.append((o, grace))
    return new, ready


def _students_ledger_until(session: Session, instance_ids: list[str], now: datetime) -> dict[str, datetime]:
    """Per orphan a workspace row references (a "missing" instance marked ended that reappeared): until when a
    student's ledger holds its storage (the row's end; `now` if the row went live again meanwhile)."""
    rows = session.execute(
        select(Workspace.instance_id, Workspace.state, Workspace.state_changed_at).where(
            Workspace.instance_id.in_(instance_ids)
        )
    )
    out: dict[str, datetime] = {}
    for iid, state, changed in rows:
        until = now if state in LIVE else changed
        out[iid] = max(until, out.get(iid, until))
    return out


def _last_booked(session: Session, refs: list[str]) -> Last:
    if not refs:
        return {}
    rows = session.execute(
        select(CourseCharge.course_id, CourseCharge.ref, func.max(CourseCharge.period_end))
        .where(CourseCharge.kind == "orphan", CourseCharge.ref.in_(refs))
        .group_by(CourseCharge.course_id, CourseCharge.ref)
    )
    return {(c, "orphan", r): e for c, r, e in rows}


def _tell_kept(session: Session, ctx: JobContext, orphan: InstanceInfo, volumes: list[VolumeInfo]) -> None:
    """Audit and log once a month an orphan past its grace kept because a volume would survive its termination."""
    if ctx.redis.set(f"cwc:orphan-kept:{orphan.instance_id}", 1, nx=True, ex=30 * 86400):
        kept = [v.volume_id for v in volumes if not v.delete_on_termination]
        append_event(
            session,
            "workspace.orphan_kept",
            subject=orphan.instance_id,
            details={"tags": orphan.tags, "volumes_kept_on_termination": kept},
        )
        log.error("orphan %s past its grace keeps volumes %s on termination: not terminated", orphan.instance_id, kept)


def _tell_stranger(session: Session, ctx: JobContext, orphans: list[InstanceInfo]) -> None:
    """Audit and log once an orphan past its grace whose workspace tag names no ended workspace of its course here."""
    for o in orphans:
        if ctx.redis.set(f"cwc:orphan-stranger:{o.instance_id}", 1, nx=True, ex=365 * 86400):
            append_event(
                session,
                "workspace.orphan_kept",
                subject=o.instance_id,
                details={"tags": o.tags, "reason": "its workspace tag names no workspace of its course here"},
            )
            log.error(
                "orphan %s past its grace names workspace %r, which is no ended workspace of course %r in this "
                "database: not terminated (it may be another installation's); check the account",
                o.instance_id, o.tags.get("cwc:workspace-id"), o.tags.get("cwc:course"),
            )  # fmt: skip


def _terminate(ctx: JobContext, due: list[tuple[InstanceInfo, int]], volumes: dict[str, list[VolumeInfo]]) -> int:
    """Re-read the workspaces (no lock), terminate the orphans none references, audit each one terminated."""
    if not due:
        return 0
    ids = [o.instance_id for o, _ in due]
    tagged = {o.workspace_id for o, _ in due if o.workspace_id is not None}
    with ctx.session() as session:
        taken = set(session.scalars(select(Workspace.instance_id).where(Workspace.instance_id.in_(ids))))
        rows = session.execute(
            select(Workspace.id, Workspace.course_id, Workspace.state).where(Workspace.id.in_(tagged))
        )
        course_of = {w: (c, state in LIVE) for w, c, state in rows}
        live = {w for w, (_, is_live) in course_of.items() if is_live}
        strangers = {
            o.instance_id
            for o, _ in due
            if o.workspace_id not in course_of or course_of[o.workspace_id][0] != course_id_of(o.tags)
        }
        _tell_stranger(session, ctx, [o for o, _ in due if o.instance_id in strangers])
        session.commit()
    go = [(o, g) for o, g in due if not {o.instance_id} & (taken | strangers) and o.workspace_id not in live]
    for o in {o.instance_id for o, _ in due} - {o.instance_id for o, _ in go} - strangers:
        log.warning("orphan %s now has a workspace row: not terminated", o)
    if not go:
        return 0
    try:
        ctx.backend.terminate([o.instance_id for o, _ in go])
    except CloudError:
        log.exception("orphans %s could not be terminated; the next reconcile retries", [o.instance_id for o, _ in go])
        return 0
    with ctx.session() as session:
        for o, grace in go:
            vols = volumes[o.instance_id]
            details = {
                "tags": o.tags,
                "stopped_since": o.tags.get(STOPPED_AT),
                "grace_days": grace,
                "volumes": [{"id": v.volume_id, "gb": v.size_gb, "type": v.volume_type} for v in vols],
            }
            append_event(session, "workspace.orphan_terminated", subject=o.instance_id, details=details)
            log.warning("orphan %s terminated after %s days stopped", o.instance_id, grace)
        session.commit()
    return len(go)
