"""Workspace jobs: launch, start and stop one workspace. Thin, id-only, idempotent; each opens its own session.

A retried job never launches twice: the row is locked and its state says what was done already; a
provision that died after AWS accepted it finds its instance by the workspace tag before launching again.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.course_paths import course_slug
from classroom.db import utcnow
from classroom.integrity.settings import records_commands
from classroom.jobs.context import JobContext, current
from classroom.jobs.names import STOP_WORKSPACE
from classroom.models import Course, Person, Workspace
from classroom.services.workspaces import Job, mark_failed, set_state
from classroom.workspaces.lifecycle import WANTS_DOWN, DesiredState, WorkspaceState
from config.catalog import load_catalog
from provisioning.activity import collecting
from provisioning.agent_service import issue_agent_token
from provisioning.backend import MANAGED_BY, CloudBackend, CloudError, InstanceInfo, LaunchSpec
from provisioning.course_cloud import course_key, ensure_course_cloud
from provisioning.restore_boot import restore_download
from provisioning.ssh_ca import ensure_course_ca
from provisioning.ssh_keys import active_keys
from provisioning.stop_jobs import call_stop, claim_stop, record_stop
from provisioning.userdata import UserDataInput, render_user_data

log = logging.getLogger(__name__)
S = WorkspaceState
D = DesiredState


def locked(session: Session, workspace_id: int, *, skip_locked: bool = False) -> Workspace | None:
    """The workspace row, locked for this transaction (None if gone, or busy when `skip_locked`)."""
    return session.scalar(
        select(Workspace).where(Workspace.id == workspace_id).with_for_update(skip_locked=skip_locked)
    )


def provision_workspace(workspace_id: int) -> str:
    """Launch the workspace's instance once; returns what happened (for logs and tests).

    Claim, commit, call, record: no row lock is held while AWS answers. A stop wanted before the launch
    cancels it; a stop wanted while AWS launched is carried out as soon as the instance exists.
    """
    ctx = current()
    with ctx.session() as session:
        ws = locked(session, workspace_id)
        if ws is None or ws.state not in (S.REQUESTED, S.PROVISIONING) or ws.instance_id:
            return "nothing to do"
        retry = ws.state is S.PROVISIONING
        if not retry and ws.desired_state is not D.RUNNING:
            return _cancel_launch(session, ws)
        set_state(session, ws, S.PROVISIONING, reason="provisioning started")
        session.commit()
    if retry and (found := _find_launched(ctx.backend, workspace_id)):
        return _record_launch(workspace_id, found, adopted=True)
    with ctx.session() as session:
        ws = session.get(Workspace, workspace_id)
        assert ws is not None
        if ws.desired_state is not D.RUNNING:
            ws = locked(session, workspace_id)
            assert ws is not None
            return _cancel_launch(session, ws) if not ws.instance_id else "nothing to do"
        try:
            spec = launch_spec(session, ctx, ws)
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
    ws = locked(session, workspace_id)
    if ws is not None and ws.state in (S.REQUESTED, S.PROVISIONING) and not ws.instance_id:
        mark_failed(session, ws, reason)
    session.commit()
    return "failed"


def _record_launch(workspace_id: int, info: InstanceInfo, *, adopted: bool = False) -> str:
    """Record the instance AWS launched; stop it at once when a stop was wanted meanwhile."""
    ctx = current()
    todo: list[Job] = []
    with ctx.session() as session:
        ws = locked(session, workspace_id)
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
            todo.append(Job(STOP_WORKSPACE, ws.id))
        ended = ws.state in (S.TERMINATED, S.FAILED)  # cancelled or given up while AWS was launching
        session.commit()
    ctx.release(todo)
    if ended:
        try:
            ctx.backend.terminate([info.instance_id])
        except CloudError:
            log.exception("instance %s of ended workspace %s not terminated", info.instance_id, workspace_id)
        return "terminated"
    return "adopted" if adopted else "launched"


def _find_launched(backend: CloudBackend, workspace_id: int):  # type: ignore[no-untyped-def]
    return next(
        (i for i in backend.describe_managed() if i.workspace_id == workspace_id and i.state != "terminated"), None
    )


def launch_spec(session: Session, ctx: JobContext, ws: Workspace) -> LaunchSpec:
    template = load_catalog().get(ws.template_id)
    if template is None:
        raise CloudError(f"The workspace template {ws.template_id} no longer exists; ask your instructor.")
    cloud = ensure_course_cloud(session, ws.course_id, ctx.backend, ctx.settings.ssh_allowed_cidrs)
    course = session.get(Course, ws.course_id)
    person = session.get(Person, ws.person_id)
    assert course is not None and person is not None
    token = issue_agent_token(ws)
    restore = restore_download(session, ctx.backend, ws.id)  # a restored student's home, fetched at first boot
    collects = collecting(session, ws.course_id)  # the first login banner says what the course records
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
            collects_activity=collects,
            records_commands=collects and records_commands(session, ws.course_id),
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
    ctx = current()
    with ctx.session() as session:
        claim = claim_stop(session, workspace_id, utcnow())
        session.commit()
    if claim is None:
        return "nothing to do"
    outcome = call_stop(ctx.backend, claim)
    with ctx.session() as session:
        record_stop(session, claim, outcome)
        session.commit()
    return outcome.result


def start_workspace(workspace_id: int) -> str:
    """Do the cloud start: claim (row says starting, a start is wanted), call outside any transaction, record."""
    ctx = current()
    with ctx.session() as session:
        ws = locked(session, workspace_id)
        if ws is None or ws.state is not S.STARTING or ws.desired_state is not D.RUNNING or not ws.instance_id:
            return "nothing to do"
        instance, course_id = ws.instance_id, ws.course_id
        session.commit()
    try:
        ctx.backend.start([instance])
    except CloudError as exc:
        with ctx.session() as session:
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
