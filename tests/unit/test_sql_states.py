"""Which states cost what is defined once (classroom/workspaces/lifecycle.py): every raw statement's state sets
equal those definitions, and no module outside classroom/sql writes a workspace state into SQL by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from classroom.models import workspaces as workspace_models
from classroom.sql import course_money, metering, sweep, workspaces
from classroom.workspaces.lifecycle import (
    BILLING_COMPUTE,
    BILLING_DISK,
    DOWN,
    ENDED,
    RESERVED_DISK,
    SWEEP_STOPS,
    WANTS_DOWN,
    DesiredState,
    WorkspaceState,
)

ROOT = Path(__file__).resolve().parents[2]
STATE_VALUES = {s.value for s in WorkspaceState} | {d.value for d in DesiredState}
LIST = re.compile(r"\b(\w*state)\s+(NOT\s+)?IN\s*\(([^)]*)\)", re.IGNORECASE)


def state_lists(sql: str) -> list[tuple[str, bool, frozenset[str]]]:
    """(column, negated, values) for every `<...state> [NOT] IN ('a', 'b')` list of quoted literals in `sql`."""
    found = []
    for column, negated, body in LIST.findall(sql):
        values = re.findall(r"'([^']*)'", body)
        if values:
            found.append((column.lower(), bool(negated), frozenset(values)))
    return found


def values(states) -> frozenset[str]:  # type: ignore[no-untyped-def]
    return frozenset(s.value for s in states)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            metering.ACCRUE_SQL,
            [
                ("state", False, ENDED),
                ("state", False, ENDED),
                ("to_state", False, BILLING_COMPUTE),
                ("to_state", False, BILLING_DISK),
            ],
        ),
        (sweep.POSITIONS_SQL, [("state", False, SWEEP_STOPS)]),
        (sweep.RUNNING_SQL, [("state", False, RESERVED_DISK)]),
        (sweep.STOP_SQL, [("state", False, SWEEP_STOPS)]),
        (course_money.POSITION_SQL, [("state", False, RESERVED_DISK)]),
        (workspaces.UNCONVERGED_SQL, [("desired_state", False, WANTS_DOWN), ("state", True, DOWN)]),
        (workspaces.LEASE_DISKS_SQL, [("state", False, RESERVED_DISK)]),
        (workspaces.REVOKE_STOPPED_AGENTS, [("state", False, DOWN)]),
    ],
)
def test_each_statement_uses_the_python_state_sets(statement, expected):  # type: ignore[no-untyped-def]
    assert state_lists(statement.text) == [(c, n, values(s)) for c, n, s in expected]


def test_the_one_live_conflict_target_is_the_ended_states():
    assert state_lists(workspaces.ONE_LIVE_WHERE) == [("state", True, values(ENDED))]


def test_the_models_index_predicates_agree_with_the_python_sets():
    """The DDL text is frozen by its migration; it must still say what the Python sets say."""
    assert state_lists(workspace_models.UNCONVERGED) == [
        ("desired_state", False, values(WANTS_DOWN)),
        ("state", True, values(DOWN)),
    ]
    index = next(i for i in workspace_models.Workspace.__table__.indexes if i.name == "uq_workspaces_one_live")
    assert state_lists(str(index.dialect_options["postgresql"]["where"])) == [("state", True, values(ENDED))]


def test_the_sweep_stops_only_what_is_billed_for_compute():
    assert SWEEP_STOPS <= BILLING_COMPUTE and RESERVED_DISK <= BILLING_DISK


SKIP = ("classroom/sql/", "classroom/migrations/", "classroom/models/", "classroom/workspaces/lifecycle.py")
BY_HAND = re.compile(r"\bstate\s+(?:NOT\s+)?IN\s*\(\s*'|\bstate\s*=\s*'(" + "|".join(sorted(STATE_VALUES)) + ")'")


def test_no_module_outside_classroom_sql_writes_a_state_into_sql_by_hand():
    offenders = []
    for package in ("classroom", "provisioning", "lms_sync", "lti_app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(SKIP):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if BY_HAND.search(line):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
