"""The reconcile job: record what AWS reports (observed state) for every live workspace, issue wanted stops
again until AWS agrees (intent is never rewritten), book and stop orphans (and book and, after the grace,
terminate their disks), and retry or fail stalled launches."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.jobs.context import JobContext, current
from classroom.jobs.names import PROVISION_WORKSPACE
from classroom.models import Course, Workspace
from classroom.notify import notify
from classroom.services.workspaces import Job, mark_failed, set_state
from classroom.workspaces.lifecycle import LIVE, DesiredState, WorkspaceState
from provisioning.backend import CloudError, InstanceInfo
from provisioning.jobs.orphan_disks import settle_orphan_disks
from provisioning.jobs.workspace import locked
from provisioning.reconcile import CHANGING_AWS, MISSING, Change, WorkspaceRow, judged, plan_reconcile, to_ask
from provisioning.reset_ends import to_end, wanted_gone
from provisioning.stop_jobs import drive_stops

log = logging.getLogger(__name__)
S = WorkspaceState
D = DesiredState
ORPHAN_BILLED = ("pending", "running")  # AWS states in which an orphan costs compute: stop it, book it
FULL_KEY = "cwc:reconcile:full"  # set for settings.reconcile_full_every_s (wall clock) by each full pass


def reconcile_workspaces() -> dict[str, int]:
    """Describe the managed instances (all of them once a minute, else what may have changed: `_observe`); record
    what AWS reports (observed state), issue wanted stops again until AWS agrees (intent is never rewritten), flag
    instances without a workspace."""
    ctx = current()
    with ctx.session() as session:  # rows first: an instance launched after this read is never judged missing
        rows = [
            WorkspaceRow(w.id, w.state, w.instance_id, w.stop_mode)
            for w in session.scalars(select(Workspace).where(Workspace.state.in_(LIVE)))
        ]
        session.commit()
    instances, only = _observe(ctx, rows)
    with ctx.session() as session:
        plan = plan_reconcile(rows, instances, only)
        for change in plan.changes:
            ws = locked(session, change.workspace_id, skip_locked=True)  # a busy row is observed next pass
            if ws is None or not _confirmed(ctx, change):
                continue
            ws.instance_id = ws.instance_id or change.instance_id
            ws.public_ip = change.public_ip or ws.public_ip
            ws.availability_zone = change.availability_zone or ws.availability_zone
            if set_state(session, ws, change.state, actor="reconcile", reason=change.reason, aws_at=change.aws_at):
                _late_running(session, ctx, ws, change)
            if change.reason == MISSING:
                tell_workspace_lost(session, ws)
        orphans, to_stop = _book_orphans(session, ctx, plan.orphans)
        replaced = to_end(wanted_gone(session), {r.instance_id for r in rows if r.instance_id}, instances)
        session.flush()
        retry = _stalled_launches(session) + drive_stops(session, utcnow())
        session.commit()
    if to_stop:  # claim (booked, committed), then call: AWS is never called under a row lock
        try:
            ctx.backend.stop(to_stop, hibernate=False)
        except CloudError:
            log.exception("orphan instances %s could not be stopped; the next reconcile retries", to_stop)
            to_stop = []
    disks = settle_orphan_disks(ctx, orphans, set(to_stop))  # book their volumes; terminate after the grace
    if replaced:  # a reset's old (or failed new) instance still alive: its end was recorded, ask EC2 again
        try:
            ctx.backend.terminate(replaced)
        except CloudError:
            log.exception("replaced instances %s could not be terminated; the next reconcile retries", replaced)
    ctx.release(retry)
    return {
        "changed": len(plan.changes),
        "orphans": len(plan.orphans),
        "instances": len(instances),
        "full": int(only is None),
        "retried": len(retry),
        "replaced": len(replaced),
        **disks,
    }


def _observe(ctx: JobContext, rows: list[WorkspaceRow]) -> tuple[list[InstanceInfo], frozenset[int] | None]:
    """The instances to reconcile against and the rows they can judge (None: all). A full describe of every managed
    instance at most once a `reconcile_full_every_s` (a minute by default; 0: every pass; the first pass after a
    failed one is full again); between, the managed
    instances in a moving or billed AWS state and, by id, those of rows not at rest that were not among them
    (provisioning.reconcile): at 500 students most instances are stopped most of the time, and a describe costs
    by the instance (moto: about 1.3 ms each; AWS's answer is paged and parsed the same way)."""
    every = ctx.settings.reconcile_full_every_s
    if every <= 0 or ctx.redis.set(FULL_KEY, 1, nx=True, ex=every):
        try:
            return ctx.backend.describe_managed(), None
        except CloudError:
            ctx.redis.delete(FULL_KEY)
            raise
    found = ctx.backend.describe_managed(CHANGING_AWS)
    seen = {i.instance_id for i in found}
    return found + ctx.backend.describe(to_ask(rows, seen)), judged(rows, seen)


def _late_running(session: Session, ctx: JobContext, ws: Workspace, change: Change) -> None:
    """`running` recorded at AWS's LaunchTime: seconds the sweep already metered as not running are booked."""
    from classroom.services.metering import book_late_running
    from config.prices import load_prices

    if change.state is S.RUNNING and change.aws_at is not None:
        prices = load_prices().region(ctx.settings.aws_region)
        book_late_running(session, ws, ws.state_changed_at, utcnow(), prices)


def _book_orphans(
    session: Session, ctx: JobContext, orphans: list[InstanceInfo]
) -> tuple[list[InstanceInfo], list[str]]:
    """Flag each orphan once a day; book the running ones' cost to their course; return the orphans this tool
    acts on (those naming a course of this database, whose workspace is still not live) and the running ones to
    stop.

    An instance is an orphan only if its workspace is still not live now (re-read after the describe): a
    workspace created during the reconcile is never taken for one. `cwc:managed-by` is the same for every
    installation, so an orphan whose `cwc:course` tag is missing or names no course of this database may be
    another installation's (staging and production in one account): it is never stopped, booked or terminated,
    only audited as `workspace.orphan_unknown` with its tags and logged as an error, once per instance. The others
    are stopped (the stop keeps their disk), their running cost booked to their course; their volumes' storage is
    booked, and they are terminated after the disk grace period, by `orphan_disks`."""
    from classroom.services.course_charges import book, course_id_of, orphan_charge
    from config.prices import load_prices

    claimed = {o.workspace_id for o in orphans if o.workspace_id is not None}
    live = set(session.scalars(select(Workspace.id).where(Workspace.id.in_(claimed), Workspace.state.in_(LIVE))))
    orphans = [o for o in orphans if o.workspace_id not in live]
    for orphan in orphans:
        if ctx.redis.set(f"cwc:orphan-flagged:{orphan.instance_id}", 1, nx=True, ex=86400):
            append_event(
                session,
                "workspace.orphan_instance",
                subject=orphan.instance_id,
                details={"state": orphan.state, "tags": orphan.tags},
            )
            log.warning("instance %s carries our tag but has no live workspace", orphan.instance_id)
    courses = {c for o in orphans if (c := course_id_of(o.tags)) is not None}
    known = set(session.scalars(select(Course.id).where(Course.id.in_(courses)))) if courses else set()
    _tell_unknown(session, ctx, [o for o in orphans if course_id_of(o.tags) not in known])
    orphans = [o for o in orphans if course_id_of(o.tags) in known]
    now, prices = utcnow(), load_prices().region(ctx.settings.aws_region)
    running = [o for o in orphans if o.state in ORPHAN_BILLED]
    book(
        session,
        [
            orphan_charge(course_id_of(o.tags), o.instance_id, o.instance_type, o.launched_at, now, prices)  # type: ignore[arg-type]
            for o in running
            if o.launched_at
        ],
        now,
    )
    return orphans, [o.instance_id for o in running]


def _tell_unknown(session: Session, ctx: JobContext, orphans: list[InstanceInfo]) -> None:
    """Audit and log, once per instance, an orphan naming no course of this database: left alone."""
    for o in orphans:
        if ctx.redis.set(f"cwc:orphan-unknown:{o.instance_id}", 1, nx=True, ex=365 * 86400):
            run = o.launched_at.isoformat() if o.launched_at else "unknown"
            details = {"state": o.state, "tags": o.tags, "instance_type": o.instance_type, "launched_at": run}
            append_event(session, "workspace.orphan_unknown", subject=o.instance_id, details=details)
            log.error(
                "instance %s (%s, %s since %s) carries our managed-by tag but names no course of this database "
                "(tags %s): left alone (it may be another installation's); its cost is booked nowhere, check the "
                "account", o.instance_id, o.instance_type, o.state, run, o.tags,
            )  # fmt: skip


def tell_workspace_lost(session: Session, ws: Workspace) -> None:
    """Tell the student their workspace's instance is gone (its files with it) and how to get a new one."""
    name = ws.link_title or ws.template_id
    notify(
        session,
        person_id=ws.person_id,
        course_id=ws.course_id,
        subject=f"Your workspace {name} was lost"[:255],
        body=(
            f"The cloud instance of your workspace {name} ({ws.instance_id}) no longer exists, so the workspace "
            "has ended and the files on its disk are gone (course materials and anything you pushed elsewhere "
            "are safe). Open the course's Cloud Workstation link to start a new one; ask your TAs if you need "
            "an extension."
        ),
    )


def _confirmed(ctx: JobContext, change: Change) -> bool:
    """A vanished instance must be missing on two passes before its workspace ends (AWS lists lag behind)."""
    if change.state is not S.TERMINATED or change.reason != MISSING:
        return True
    key = f"cwc:reconcile:missing:{change.workspace_id}"
    if ctx.redis.exists(key):
        return True
    ctx.redis.set(key, 1, ex=max(600, 3 * ctx.settings.reconcile_full_every_s))  # rows at rest: full passes only
    return False


STALLED_AFTER = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(minutes=15)


def _stalled_launches(session: Session) -> list[Job]:
    """Launches with no instance after a while: queue them again (same job id), or fail them with a reason."""
    now = utcnow()
    stalled = session.scalars(
        select(Workspace)
        .where(
            Workspace.state.in_((S.REQUESTED, S.PROVISIONING)),
            Workspace.instance_id.is_(None),
            Workspace.state_changed_at < now - STALLED_AFTER,
        )
        .with_for_update(skip_locked=True)
    ).all()
    retry = []
    for ws in stalled:
        if now - ws.created_at > GIVE_UP_AFTER and ws.desired_state is D.RUNNING:
            mark_failed(
                session,
                ws,
                "AWS did not start this workspace in 15 minutes. Nothing is charged; "
                "open the link again to retry, or tell your TA.",
            )
        else:
            retry.append(Job(PROVISION_WORKSPACE, ws.id))
    return retry
