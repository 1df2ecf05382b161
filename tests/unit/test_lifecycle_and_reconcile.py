"""The workspace state machine and the reconcile plan (pure)."""

from __future__ import annotations

import pytest

from classroom.workspaces.lifecycle import ALLOWED, TransitionError, WorkspaceState, can_transition, next_state
from provisioning.backend import InstanceInfo
from provisioning.reconcile import WorkspaceRow, plan_reconcile

S = WorkspaceState


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S.REQUESTED, S.PROVISIONING),
        (S.PROVISIONING, S.RUNNING),
        (S.RUNNING, S.STOPPING),
        (S.STOPPING, S.STOPPED),
        (S.STOPPING, S.HIBERNATED),
        (S.STOPPED, S.STARTING),
        (S.HIBERNATED, S.STARTING),
        (S.STARTING, S.RUNNING),
        (S.RUNNING, S.TERMINATING),
        (S.TERMINATING, S.TERMINATED),
        (S.PROVISIONING, S.FAILED),
        (S.STOPPED, S.RUNNING),
    ],
)
def test_allowed_transitions(a: WorkspaceState, b: WorkspaceState) -> None:
    assert next_state(a, b) is b


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S.TERMINATED, S.RUNNING),
        (S.REQUESTED, S.RUNNING),
        (S.FAILED, S.RUNNING),
        (S.TERMINATING, S.RUNNING),
        (S.RUNNING, S.REQUESTED),
        (S.STOPPED, S.PROVISIONING),
    ],
)
def test_refused_transitions(a: WorkspaceState, b: WorkspaceState) -> None:
    with pytest.raises(TransitionError, match=f"{a.value} cannot become {b.value}"):
        next_state(a, b)


def test_same_state_is_a_no_op_for_every_state() -> None:
    assert all(can_transition(s, s) for s in S)
    assert set(ALLOWED) == set(S)


def _inst(iid: str, state: str, ws: int | None = None, reason: str = "") -> InstanceInfo:
    tags = {"cwc:managed-by": "cloudworkstation-classroom"} | ({"cwc:workspace-id": str(ws)} if ws else {})
    return InstanceInfo(iid, state, tags, "us-east-1a", "203.0.113.9", reason)


def test_reconcile_heals_each_kind_of_drift() -> None:
    rows = [
        WorkspaceRow(1, S.PROVISIONING, "i-1"),  # now running
        WorkspaceRow(2, S.RUNNING, "i-2"),  # stopped from inside the instance
        WorkspaceRow(3, S.STOPPING, "i-3", stop_mode="hibernate"),  # hibernated
        WorkspaceRow(4, S.RUNNING, "i-4"),  # terminated in the console
        WorkspaceRow(5, S.RUNNING, "i-gone"),  # vanished entirely
        WorkspaceRow(6, S.PROVISIONING, None),  # launched, but the job died before saving the id
        WorkspaceRow(7, S.RUNNING, "i-7"),  # no drift
        WorkspaceRow(8, S.TERMINATED, "i-8"),  # ended rows are ignored
    ]
    instances = [
        _inst("i-1", "running", 1),
        _inst("i-2", "stopped", 2),
        _inst("i-3", "stopped", 3),
        _inst("i-4", "terminated", 4),
        _inst("i-6", "running", 6),
        _inst("i-7", "running", 7),
        _inst("i-9", "running", 99),
        _inst("i-p", "pending", 1),
    ]
    plan = plan_reconcile(rows, instances)
    got = {c.workspace_id: (c.state, c.instance_id) for c in plan.changes}
    assert got == {
        1: (S.RUNNING, "i-1"),
        2: (S.STOPPED, "i-2"),
        3: (S.HIBERNATED, "i-3"),
        4: (S.TERMINATED, "i-4"),
        5: (S.TERMINATED, "i-gone"),
        6: (S.RUNNING, "i-6"),
    }
    assert [o.instance_id for o in plan.orphans] == ["i-9"]


def test_reconcile_leaves_pending_instances_alone() -> None:
    plan = plan_reconcile([WorkspaceRow(1, S.PROVISIONING, "i-1")], [_inst("i-1", "pending", 1)])
    assert plan.changes == [] and plan.orphans == []
