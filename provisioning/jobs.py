"""Workspace jobs run by the RQ worker: thin, id-only, idempotent; each opens its own session.

A retried job never launches twice: the row is locked and its state says what was done already; a
provision that died after AWS accepted it finds its instance by the workspace tag before launching again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from classroom.audit import append_event
from classroom.db import make_engine, make_session_factory, utcnow
from classroom.jobs.queue import enqueue
from classroom.models import Course, Person, Workspace
from classroom.notify import notify
from classroom.workspaces.lifecycle import LIVE, WANTS_DOWN, DesiredState, WorkspaceState
from config.catalog import load_catalog
from config.settings import Settings
from provisioning.agent_service import issue_agent_token
from provisioning.backend import MANAGED_BY, CloudBackend, CloudError, InstanceInfo, LaunchSpec
from provisioning.course_cloud import course_key, ensure_course_cloud
from provisioning.factory import backend_from_settings
from provisioning.reconcile import MISSING, Change, WorkspaceRow, plan_reconcile
from provisioning.restore_boot import restore_download
from provisioning.services import Job, mark_failed, set_state
from provisioning.ssh_ca import ensure_course_ca
from provisioning.ssh_keys import active_keys
from provisioning.stop_jobs import call_stop, claim_stop, drive_stops, record_stop
from provisioning.userdata import UserDataInput, course_slug, render_user_data

log = logging.getLogger(__name__)
S = WorkspaceState
D = DesiredState
ORPHAN_BILLED = ("pending", "running")  # AWS states in which an orphan costs compute: stop it, book it


@dataclass
class JobContext:
    """What a job needs from outside, built once per worker process."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: Redis
    backend: CloudBackend


_override: JobContext | None = None


@lru_cache(maxsize=1)
def _from_env() -> JobContext:
    settings = Settings.from_env()
    assert settings.database_url and settings.redis_url, "jobs need DATABASE_URL and REDIS_URL"
    redis = Redis.from_url(settings.redis_url)
    return JobContext(
        settings,
        make_session_factory(make_engine(settings.database_url, pool_size=2)),
        redis,
        backend_from_settings(settings, redis),
    )


def _context() -> JobContext:
    return _override or _from_env()


def use_context(ctx: JobContext | None) -> None:
    """Tests and benchmarks run jobs in-process with their own context (settings, backend with counters)."""
    global _override
    _override = ctx


@contextmanager
def _session() -> Iterator[Session]:
    session = _context().sessions()
    try:
        yield session
    finally:
        session.close()


def release(jobs: list[Job]) -> None:
    """Enqueue jobs (after the commit that made them necessary)."""
    for job in jobs:
        enqueue(_context().redis, job.func, job.workspace_id, job_id=job.job_id)


def _locked(session: Session, workspace_id: int, *, skip_locked: bool = False) -> Workspace | None:
    return session.scalar(
        select(Workspace).where(Workspace.id == workspace_id).with_for_update(skip_locked=skip_locked)
    )


def provision_workspace(workspace_id: int) -> str:
    """Launch the workspace's instance once; returns what happened (for logs and tests).

    Claim, commit, call, record: no row lock is held while AWS answers. A stop wanted before the launch
    cancels it; a stop wanted while AWS launched is carried out as soon as the instance exists.
    """
    ctx = _context()
    with _session() as session:
        ws = _locked(session, workspace_id)
        if ws is None or ws.state not in (S.REQUESTED, S.PROVISIONING) or ws.instance_id:
            return "nothing to do"
        retry = ws.state is S.PROVISIONING
        if not retry and ws.desired_state is not D.RUNNING:
            return _cancel_launch(session, ws)
        set_state(session, ws, S.PROVISIONING, reason="provisioning started")
        session.commit()
    if retry and (found := _find_launched(ctx.backend, workspace_id)):
        return _record_launch(workspace_id, found, adopted=True)
    with _session() as session:
        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        if ws.desired_state is not D.RUNNING:
            ws = _locked(session, workspace_id)
            assert ws is not None
            return _cancel_launch(session, ws) if not ws.instance_id else "nothing to do"
        try:
            spec = _launch_spec(session, ctx, ws)
        except CloudError as exc:
            return _fail_launch(session, workspace_id, str(exc))
        session.commit()  # the agent token's hash
        try:
            info = ctx.backend.launch(spec)
        except CloudError as exc:
            return _fail_launch(session, workspace_id, str(exc))
    return _record_launch(workspace_id, info)


def _cancel_launch(session: Session, ws: Workspace) -> str:
    """The stop was wanted before any instance existed: end the row, nothing launched, nothing charged."""
    set_state(session, ws, S.TERMINATED, actor="provision", reason="stop requested before launch")
    append_event(session, "workspace.launch_cancelled", course_id=ws.course_id, subject=str(ws.id))
    session.commit()
    return "cancelled"


def _fail_launch(session: Session, workspace_id: int, reason: str) -> str:
    session.rollback()
    ws = _locked(session, workspace_id)
    if ws is not None and ws.state in (S.REQUESTED, S.PROVISIONING) and not ws.instance_id:
        mark_failed(session, ws, reason)
    session.commit()
    return "failed"


def _record_launch(workspace_id: int, info: InstanceInfo, *, adopted: bool = False) -> str:
    """Record the instance AWS launched; stop it at once when a stop was wanted meanwhile."""
    todo: list[Job] = []
    with _session() as session:
        ws = _locked(session, workspace_id)
        assert ws is not None
        ws.instance_id, ws.availability_zone = info.instance_id, info.availability_zone
        ws.public_ip = info.public_ip or ws.public_ip
        append_event(
            session,
            "workspace.adopted" if adopted else "workspace.launched",
            course_id=ws.course_id,
            subject=str(ws.id),
            details={"instance": info.instance_id, "type": ws.instance_type, "az": info.availability_zone},
        )
        if ws.desired_state in WANTS_DOWN and ws.state is S.PROVISIONING:
            set_state(session, ws, S.STOPPING, actor="provision", reason="stop requested during provisioning")
            todo.append(Job("provisioning.jobs.stop_workspace", ws.id))
        ended = ws.state in (S.TERMINATED, S.FAILED)  # cancelled or given up while AWS was launching
        session.commit()
    release(todo)
    if ended:
        try:
            _context().backend.terminate([info.instance_id])
        except CloudError:
            log.exception("instance %s of ended workspace %s not terminated", info.instance_id, workspace_id)
        return "terminated"
    return "adopted" if adopted else "launched"


def _find_launched(backend: CloudBackend, workspace_id: int):  # type: ignore[no-untyped-def]
    return next(
        (i for i in backend.describe_managed() if i.workspace_id == workspace_id and i.state != "terminated"), None
    )


def _launch_spec(session: Session, ctx: JobContext, ws: Workspace) -> LaunchSpec:
    template = load_catalog().get(ws.template_id)
    if template is None:
        raise CloudError(f"The workspace template {ws.template_id} no longer exists; ask your instructor.")
    cloud = ensure_course_cloud(session, ws.course_id, ctx.backend, ctx.settings.ssh_allowed_cidrs)
    course = session.get(Course, ws.course_id)
    person = session.get(Person, ws.person_id)
    assert course is not None and person is not None
    token = issue_agent_token(ws)
    restore = restore_download(session, ctx.backend, ws.id)  # a restored student's home, fetched at first boot
    user_data = render_user_data(
        UserDataInput(
            workspace_id=ws.id,
            agent_url=ctx.settings.url("/api/agent/heartbeat"),
            agent_token=token,
            os_user=template.os_user,
            ssh_public_keys=tuple(k.public_key for k in active_keys(session, ws.person_id)),
            course_slug=course_slug(course.label or course.title, course.id),
            region=ctx.backend.region,
            file_system_id=cloud.file_system_id,
            access_point_id=cloud.student_access_point_id,
            boot_grace_s=ctx.settings.lease_s,
            ca_public_key=ensure_course_ca(session, ws.course_id, settings=ctx.settings).public_key,
            restore_url=restore.url if restore else "",
            restore_sha256=restore.sha256 if restore else "",
        )
    )
    return LaunchSpec(
        workspace_id=ws.id,
        client_token=f"cwc-ws-{ws.id}",
        image=template.image,
        instance_type=template.instance_type,
        volume_gb=template.root_volume_gb,
        hibernation=template.hibernation,
        user_data=user_data,
        security_group_id=cloud.security_group_id,
        tags={
            "cwc:managed-by": MANAGED_BY,
            "cwc:workspace-id": str(ws.id),
            "cwc:course": course_key(course.id),
            "cwc:student": person.email or person.sub,
            "cwc:template": template.id,
            "Name": f"cwc-{course_key(course.id)}-ws{ws.id}",
        },
    )


def stop_workspace(workspace_id: int) -> str:
    """Carry out a wanted stop (hibernating when asked and supported; forced once stuck): claim, call, record."""
    ctx = _context()
    with _session() as session:
        claim = claim_stop(session, workspace_id, utcnow())
        session.commit()
    if claim is None:
        return "nothing to do"
    outcome = call_stop(ctx.backend, claim)
    with _session() as session:
        record_stop(session, claim, outcome)
        session.commit()
    return outcome.result


def start_workspace(workspace_id: int) -> str:
    """Do the cloud start: claim (row says starting, a start is wanted), call outside any transaction, record."""
    ctx = _context()
    with _session() as session:
        ws = _locked(session, workspace_id)
        if ws is None or ws.state is not S.STARTING or ws.desired_state is not D.RUNNING or not ws.instance_id:
            return "nothing to do"
        instance, course_id = ws.instance_id, ws.course_id
        session.commit()
    try:
        ctx.backend.start([instance])
    except CloudError as exc:
        with _session() as session:
            append_event(
                session,
                "workspace.start_failed",
                course_id=course_id,
                subject=str(workspace_id),
                details={"error": str(exc)},
            )
            session.commit()
        return "failed"  # reconcile moves the row to what AWS reports
    return "starting"


def reconcile_workspaces() -> dict[str, int]:
    """One batched describe of every managed instance; record what AWS reports (observed state), issue wanted
    stops again until AWS agrees (intent is never rewritten), flag instances without a workspace."""
    ctx = _context()
    with _session() as session:  # rows first: an instance launched after this read is never judged missing
        rows = [
            WorkspaceRow(w.id, w.state, w.instance_id, w.stop_mode)
            for w in session.scalars(select(Workspace).where(Workspace.state.in_(LIVE)))
        ]
        session.commit()
    instances = ctx.backend.describe_managed()
    with _session() as session:
        plan = plan_reconcile(rows, instances)
        for change in plan.changes:
            ws = _locked(session, change.workspace_id, skip_locked=True)  # a busy row is observed next pass
            if ws is None or not _confirmed(ctx, change):
                continue
            ws.instance_id = ws.instance_id or change.instance_id
            ws.public_ip = change.public_ip or ws.public_ip
            ws.availability_zone = change.availability_zone or ws.availability_zone
            if set_state(session, ws, change.state, actor="reconcile", reason=change.reason, aws_at=change.aws_at):
                _late_running(session, ctx, ws, change)
            if change.reason == MISSING:
                tell_workspace_lost(session, ws)
        to_stop = _book_orphans(session, ctx, plan.orphans)
        session.flush()
        retry = _stalled_launches(session) + drive_stops(session, utcnow())
        session.commit()
    if to_stop:  # claim (booked, committed), then call: AWS is never called under a row lock
        try:
            ctx.backend.stop(to_stop, hibernate=False)
        except CloudError:
            log.exception("orphan instances %s could not be stopped; the next reconcile retries", to_stop)
    release(retry)
    return {
        "changed": len(plan.changes),
        "orphans": len(plan.orphans),
        "instances": len(instances),
        "retried": len(retry),
    }


def _late_running(session: Session, ctx: JobContext, ws: Workspace, change: Change) -> None:
    """`running` recorded at AWS's LaunchTime: seconds the sweep already metered as not running are booked."""
    from classroom.services.metering import book_late_running
    from config.prices import load_prices

    if change.state is S.RUNNING and change.aws_at is not None:
        prices = load_prices().region(ctx.settings.aws_region)
        book_late_running(session, ws, ws.state_changed_at, utcnow(), prices)


def _book_orphans(session: Session, ctx: JobContext, orphans: list[InstanceInfo]) -> list[str]:
    """Flag each orphan once a day; book the running ones' cost to their course; return those to stop.

    An instance is an orphan only if its workspace is still not live now (re-read after the describe): a
    workspace created during the reconcile is never taken for one."""
    from classroom.db import utcnow
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
    now, prices = utcnow(), load_prices().region(ctx.settings.aws_region)
    running = [o for o in orphans if o.state in ORPHAN_BILLED and o.launched_at and course_id_of(o.tags)]
    book(
        session,
        [
            orphan_charge(course_id_of(o.tags), o.instance_id, o.instance_type, o.launched_at, now, prices)  # type: ignore[arg-type]
            for o in running
        ],
        now,
    )
    return [o.instance_id for o in running]


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
    ctx.redis.set(key, 1, ex=600)
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
            retry.append(Job("provisioning.jobs.provision_workspace", ws.id))
    return retry


def meter_and_enforce() -> dict[str, int]:
    """Every minute: accrue the ledger, stop what must stop, send alerts; stop jobs run after the commit."""
    from config.prices import load_prices
    from provisioning.enforcement import run_sweep

    ctx = _context()
    from classroom.jobs.liveness import record_sweep

    with _session() as session:
        now = utcnow()
        result = run_sweep(session, now, load_prices().region(ctx.settings.aws_region))
        session.commit()
    record_sweep(ctx.redis, now)
    release(result.jobs)
    return {
        "accrued": result.accrued,
        "students": result.students,
        "stopped": len(result.stopped),
        "alerts": len(result.alerts),
    }


def close_terms() -> dict[str, int]:
    """Every 10 minutes: warn an hour before term end, then apply each course's term-end actions once."""
    from provisioning.term_end import run_term_end

    with _session() as session:
        result = run_term_end(session, utcnow())
        session.commit()
    release(result.jobs)
    return {"warned": result.warned, "closed": len(result.closed), "jobs": len(result.jobs)}
