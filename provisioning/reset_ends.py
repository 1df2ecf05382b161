"""Instances a reset replaced (its old one, after the switch) or abandoned (a failed reset's new one) that AWS
still reports alive: the reconcile pass asks EC2 again to terminate them. The intent is on the reset row
(`old_end_requested_at`, or the state `failed`), so a terminate that failed in the reset job is retried every
pass; the reconciler's orphan rule does not cover them, since they carry a live workspace's tag."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.models import WorkspaceReset
from provisioning.backend import InstanceInfo

GONE = ("shutting-down", "terminated")


def to_end(wanted_gone: set[str], keep: set[str], instances: list[InstanceInfo]) -> list[str]:
    """The instances to terminate: wanted gone, not any live workspace's instance, not already ending. Pure."""
    return sorted(i.instance_id for i in instances
                  if i.instance_id in wanted_gone - keep and i.state not in GONE)  # fmt: skip


def wanted_gone(session: Session) -> set[str]:
    """Every instance a reset means to end: old ones after a switch, new ones of a failed reset."""
    old = select(WorkspaceReset.old_instance_id).where(WorkspaceReset.old_end_requested_at.is_not(None))
    new = select(WorkspaceReset.new_instance_id).where(
        WorkspaceReset.state == "failed", WorkspaceReset.new_instance_id.is_not(None)
    )
    return {str(i) for i in session.scalars(old.union(new))}
