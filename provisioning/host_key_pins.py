"""Apply the agent's host key report where its instance's pin is kept (pure decision in
classroom.workspaces.host_keys): on the workspace row for its current instance, or on a reset's row for the
reset's new instance until the switch. Both pin the first report, refuse and flag a different one (audited once
per refused set), and never change the pin; `WorkspacePin` and `ResetPin` say where each keeps it and how they
differ."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Workspace, WorkspaceReset
from classroom.workspaces.host_keys import HostKeyAction, HostKeyDecision, decide_host_keys, decide_pin, pinned_keys


@dataclass(frozen=True)
class WorkspacePin:
    """The workspace row's pin: it counts only for the instance it was reported for, so the next instance's first
    report replaces it (and clears any refusal); the pin and the refusal carry their times."""

    ws: Workspace
    reported_as: ClassVar[str] = "reported"  # the refused event's name for the reported keys

    def decide(self, reported: tuple[str, ...]) -> HostKeyDecision:
        ws = self.ws
        return decide_host_keys(pinned_keys(ws.ssh_host_keys), ws.ssh_host_keys_instance_id, ws.instance_id, reported)

    def pinned(self) -> tuple[str, ...]:
        return pinned_keys(self.ws.ssh_host_keys)

    def refused(self) -> str:
        return self.ws.ssh_host_keys_refused

    def pin(self, keys: tuple[str, ...], now: datetime) -> None:
        ws = self.ws
        ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.ssh_host_keys_at = "\n".join(keys), ws.instance_id, now
        ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "", None

    def refuse(self, refused: str, now: datetime) -> None:
        self.ws.ssh_host_keys_refused, self.ws.ssh_host_keys_refused_at = refused, now

    def details(self) -> dict[str, object]:
        return {"workspace": self.ws.id, "instance": self.ws.instance_id}


@dataclass(frozen=True)
class ResetPin:
    """A reset row's pin for its new instance. The row belongs to that one instance, so there is no instance to
    check (a report counts even before the launch's instance id is recorded) and its pin is never replaced (so
    never a refusal to clear); no times are kept (the agent's last report is `new_agent_seen_at`). Its events name
    the reset too, and the refused event names the reported keys "keys" (as it has since migration 0028)."""

    row: WorkspaceReset
    reported_as: ClassVar[str] = "keys"

    def decide(self, reported: tuple[str, ...]) -> HostKeyDecision:
        return decide_pin(self.pinned(), reported)

    def pinned(self) -> tuple[str, ...]:
        return pinned_keys(self.row.new_host_keys)

    def refused(self) -> str:
        return self.row.new_host_keys_refused

    def pin(self, keys: tuple[str, ...], now: datetime) -> None:
        self.row.new_host_keys = "\n".join(keys)

    def refuse(self, refused: str, now: datetime) -> None:
        self.row.new_host_keys_refused = refused

    def details(self) -> dict[str, object]:
        return {"workspace": self.row.workspace_id, "reset": self.row.id, "instance": self.row.new_instance_id}


def apply_host_key_report(session: Session, ws: Workspace, reported: tuple[str, ...], now: datetime) -> HostKeyAction:
    """Pin the first report for the workspace's instance; refuse and flag (audited once per refused set) a
    different one; the pin itself never changes until the instance does."""
    return _apply(session, WorkspacePin(ws), ws, reported, now)


def apply_reset_host_key_report(
    session: Session, row: WorkspaceReset, ws: Workspace, reported: tuple[str, ...], now: datetime
) -> HostKeyAction:
    """Pin the first report for the reset's new instance on the reset row; refuse and flag (audited once per
    refused set) a different one, which fails the reset (provisioning.reset_ec2.pin_ready)."""
    return _apply(session, ResetPin(row), ws, reported, now)


def _apply(
    session: Session, store: WorkspacePin | ResetPin, ws: Workspace, reported: tuple[str, ...], now: datetime
) -> HostKeyAction:
    decision = store.decide(reported)
    if decision.action is HostKeyAction.PIN:
        store.pin(decision.keys, now)
        append_event(session, "workspace.host_keys.pinned", course_id=ws.course_id, subject=str(ws.person_id),
                     details=store.details() | {"keys": list(decision.keys)})  # fmt: skip
    elif decision.action is HostKeyAction.REFUSE:
        refused = "\n".join(decision.keys)
        if refused != store.refused():  # flagged and audited once per different set, not every minute
            details = store.details() | {"pinned": list(store.pinned()), store.reported_as: list(decision.keys)}
            append_event(session, "workspace.host_keys.refused", course_id=ws.course_id, subject=str(ws.person_id),
                         details=details)  # fmt: skip
        store.refuse(refused, now)
    return decision.action


def clear_host_keys(ws: Workspace) -> None:
    """Forget the pin and any refusal: the workspace's instance was replaced or has ended."""
    ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.ssh_host_keys_at = "", None, None
    ws.ssh_host_keys_refused, ws.ssh_host_keys_refused_at = "", None
