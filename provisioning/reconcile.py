"""Compare the database with what AWS reports and plan how to heal drift. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from classroom.workspaces.lifecycle import AWS_STATES, LIVE, WorkspaceState, can_transition
from provisioning.backend import InstanceInfo

S = WorkspaceState
MISSING = "instance no longer exists in AWS"


@dataclass(frozen=True)
class WorkspaceRow:
    """The database's view of one workspace."""

    id: int
    state: WorkspaceState
    instance_id: str | None
    stop_mode: str = ""


@dataclass(frozen=True)
class Change:
    """Set this workspace to this state (and adopt the instance / address seen)."""

    workspace_id: int
    state: WorkspaceState
    instance_id: str
    public_ip: str = ""
    availability_zone: str = ""
    reason: str = ""
    aws_at: datetime | None = None  # when AWS says it happened (LaunchTime for `running`), if it says


@dataclass
class ReconcilePlan:
    """What to change, and instances carrying our tag with no live workspace (flagged, not touched)."""

    changes: list[Change] = field(default_factory=list)
    orphans: list[InstanceInfo] = field(default_factory=list)


def _target(row: WorkspaceRow, inst: InstanceInfo) -> WorkspaceState | None:
    mapped = AWS_STATES.get(inst.state)
    if mapped is S.STOPPED and (row.stop_mode == "hibernate" or "Hibernate" in inst.state_reason):
        return S.HIBERNATED
    return mapped


def plan_reconcile(rows: list[WorkspaceRow], instances: list[InstanceInfo]) -> ReconcilePlan:
    """Plan state changes so the database matches AWS; AWS is the truth about instances."""
    plan = ReconcilePlan()
    by_id = {i.instance_id: i for i in instances}
    by_ws = {i.workspace_id: i for i in instances if i.workspace_id is not None and i.state != "terminated"}
    live_ids = set()
    for row in rows:
        if row.state not in LIVE:
            continue
        live_ids.add(row.id)
        inst = by_id.get(row.instance_id or "") or (by_ws.get(row.id) if row.instance_id is None else None)
        if inst is None:
            if row.instance_id and row.state not in (S.REQUESTED,):
                plan.changes.append(Change(row.id, S.TERMINATED, row.instance_id, reason=MISSING))
            continue
        target = _target(row, inst)
        adopt = row.instance_id is None
        if target is None or (target == row.state and not adopt):
            continue
        if target == row.state or can_transition(row.state, target):
            plan.changes.append(
                Change(
                    row.id,
                    target,
                    inst.instance_id,
                    inst.public_ip,
                    inst.availability_zone,
                    reason=f"AWS reports {inst.state}",
                    aws_at=inst.launched_at if target is S.RUNNING else None,
                )
            )
    for inst in instances:
        if inst.state != "terminated" and inst.workspace_id not in live_ids:
            plan.orphans.append(inst)
    return plan
