"""Apply the agent's host key report to the workspace row (pure decision in classroom.workspaces.host_keys)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Workspace
from classroom.workspaces.host_keys import HostKeyAction, decide_host_keys, pinned_keys


def apply_host_key_report(session: Session, ws: Workspace, reported: tuple[str, ...], now: datetime) -> HostKeyAction:
    """Pin the first report for the workspace's instance; refuse and flag (audited once per refused set) a
    different one; the pin itself never changes until the instance does."""
    decision = decide_host_keys(pinned_keys(ws.ssh_host_keys), ws.ssh_host_keys_instance_id, ws.instance_id, reported)
    if decision.action is HostKeyAction.PIN:
        ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.ssh_host_keys_at = (
            "\n".join(decision.keys),
            ws.instance_id,
            now,
        )
        ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "", None
        append_event(session, "workspace.host_keys.pinned", course_id=ws.course_id, subject=str(ws.person_id),
                     details={"workspace": ws.id, "instance": ws.instance_id, "keys": list(decision.keys)})  # fmt: skip
    elif decision.action is HostKeyAction.REFUSE:
        refused = "\n".join(decision.keys)
        if refused != ws.ssh_host_keys_refused:  # flagged and audited once per different set, not every minute
            details = {"workspace": ws.id, "instance": ws.instance_id,
                       "pinned": list(pinned_keys(ws.ssh_host_keys)), "reported": list(decision.keys)}  # fmt: skip
            append_event(session, "workspace.host_keys.refused", course_id=ws.course_id, subject=str(ws.person_id),
                         details=details)  # fmt: skip
        ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = refused, now
    return decision.action


def clear_host_keys(ws: Workspace) -> None:
    """Forget the pin and any refusal: the workspace's instance was replaced or has ended."""
    ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.ssh_host_keys_at = "", None, None
    ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "", None
