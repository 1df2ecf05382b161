"""Apply the agent's host key report where its instance's pin is kept (pure decision in
classroom.workspaces.host_keys): on the workspace row for its current instance, or on a reset's row for the
reset's new instance until the switch. Both pin the first report, refuse and flag a different one (audited once
per refused set), and never change the pin. The reset row belongs to one instance, so it has no instance to check
and no pin to replace, keeps no times, and its events name the reset (and call the refused report "keys")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Workspace, WorkspaceReset
from classroom.workspaces.host_keys import HostKeyAction, HostKeyDecision, decide_host_keys, decide_pin, pinned_keys


def apply_host_key_report(session: Session, ws: Workspace, reported: tuple[str, ...], now: datetime) -> HostKeyAction:
    """Pin the first report for the workspace's instance; refuse and flag (audited once per refused set) a
    different one; the pin itself never changes until the instance does."""
    pinned = pinned_keys(ws.ssh_host_keys)
    decision = decide_host_keys(pinned, ws.ssh_host_keys_instance_id, ws.instance_id, reported)
    _audit(session, ws, decision, pinned, ws.ssh_host_keys_refused, {"workspace": ws.id, "instance": ws.instance_id},
           reported_as="reported")  # fmt: skip
    if decision.action is HostKeyAction.PIN:
        ws.ssh_host_keys, ws.ssh_host_keys_instance_id = "\n".join(decision.keys), ws.instance_id
        ws.ssh_host_keys_at = now
        ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "", None
    elif decision.action is HostKeyAction.REFUSE:
        ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "\n".join(decision.keys), now
    return decision.action


def apply_reset_host_key_report(
    session: Session, row: WorkspaceReset, ws: Workspace, reported: tuple[str, ...], now: datetime
) -> HostKeyAction:
    """Pin the first report for the reset's new instance on the reset row; refuse and flag (audited once per
    refused set) a different one, which fails the reset (provisioning.reset_ec2.pin_ready)."""
    pinned = pinned_keys(row.new_host_keys)
    decision = decide_pin(pinned, reported)
    details = {"workspace": row.workspace_id, "reset": row.id, "instance": row.new_instance_id}
    _audit(session, ws, decision, pinned, row.new_host_keys_refused, details, reported_as="keys")
    if decision.action is HostKeyAction.PIN:
        row.new_host_keys = "\n".join(decision.keys)
    elif decision.action is HostKeyAction.REFUSE:
        row.new_host_keys_refused = "\n".join(decision.keys)
    return decision.action


def _audit(session: Session, ws: Workspace, decision: HostKeyDecision, pinned: tuple[str, ...], refused_before: str,
           details: dict[str, object], *, reported_as: str) -> None:  # fmt: skip
    """Audit a pin, and a refusal once per different refused set (not every minute)."""
    who = {"course_id": ws.course_id, "subject": str(ws.person_id)}
    if decision.action is HostKeyAction.PIN:
        append_event(session, "workspace.host_keys.pinned", **who, details=details | {"keys": list(decision.keys)})
    elif decision.action is HostKeyAction.REFUSE and "\n".join(decision.keys) != refused_before:
        append_event(session, "workspace.host_keys.refused", **who,
                     details=details | {"pinned": list(pinned), reported_as: list(decision.keys)})  # fmt: skip


def clear_host_keys(ws: Workspace) -> None:
    """Forget the pin and any refusal: the workspace's instance was replaced or has ended."""
    ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.ssh_host_keys_at = "", None, None
    ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "", None
