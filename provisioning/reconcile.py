"""Compare the database with what AWS reports and plan how to heal drift. Pure: no I/O.

A full pass describes every managed instance. Between full passes (provisioning.jobs.reconcile) a pass describes
only what may have changed: every managed instance in an AWS state that is moving or costs compute
(CHANGING_AWS, so an instance started or ended behind the tool's back is seen at once), plus, by id, the
instances of rows that are not at rest stopped or hibernated and were not among those. Rows at rest whose
instance was not seen are not judged in such a pass (an instance that vanished outright is judged missing at the
next full pass), but they still count as live, so their instances are never taken for orphans."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from classroom.workspaces.lifecycle import AWS_STATES, LIVE, WorkspaceState, can_transition
from provisioning.backend import InstanceInfo

S = WorkspaceState
MISSING = "instance no longer exists in AWS"
AT_REST = frozenset({S.STOPPED, S.HIBERNATED})  # rows a pass between full ones judges only if their instance moved
CHANGING_AWS = ("pending", "running", "stopping", "shutting-down", "terminated")  # described in every pass


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


def to_ask(rows: list[WorkspaceRow], seen: set[str]) -> list[str]:
    """Between full passes: the instances to describe by id, those of live rows not at rest and not seen."""
    moving = [r for r in rows if r.state in LIVE and r.state not in AT_REST]
    return sorted(r.instance_id for r in moving if r.instance_id and r.instance_id not in seen)


def judged(rows: list[WorkspaceRow], seen: set[str]) -> frozenset[int]:
    """Between full passes: the rows the pass can judge, every row not at rest (seen, or asked for by id) and the
    rows at rest whose instance was seen."""
    return frozenset(r.id for r in rows if r.state not in AT_REST or (r.instance_id or "") in seen)


def plan_reconcile(
    rows: list[WorkspaceRow], instances: list[InstanceInfo], only: frozenset[int] | None = None
) -> ReconcilePlan:
    """Plan state changes so the database matches AWS; AWS is the truth about instances. `only`: the rows a pass
    between full ones can judge (None: a full pass judges every row); every live row counts for orphans."""
    plan = ReconcilePlan()
    by_id = {i.instance_id: i for i in instances}
    by_ws = {i.workspace_id: i for i in instances if i.workspace_id is not None and i.state != "terminated"}
    live_ids = set()
    for row in rows:
        if row.state not in LIVE:
            continue
        live_ids.add(row.id)
        if only is not None and row.id not in only:
            continue
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
