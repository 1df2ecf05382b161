"""Which states cost what is defined once (classroom/workspaces/lifecycle.py): every raw statement's state sets
equal those definitions, and no module outside classroom/sql writes a workspace state, a membership, grade or
deployment status, or a cast to any of the schema's enum types into SQL by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Enum

from classroom.db import Base
from classroom.models import DeploymentStatus, EnrollmentStatus, GradeStatus
from classroom.models import workspaces as workspace_models
from classroom.roles import StaffLevel
from classroom.sql import course_money, metering, sweep, workspaces
from classroom.workspaces.archive_rules import ARCHIVE_RUN_ENDS
from classroom.workspaces.lifecycle import (
    BILLING_COMPUTE,
    BILLING_DISK,
    COMMITTED_DISK,
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
                ("to_state", False, ARCHIVE_RUN_ENDS),
                ("state", False, ENDED),
                ("to_state", False, BILLING_COMPUTE),
                ("to_state", False, BILLING_COMPUTE),
                ("to_state", False, BILLING_DISK),
            ],
        ),
        (sweep.POSITIONS_SQL, [("state", False, SWEEP_STOPS)]),
        (sweep.RUNNING_SQL, [("state", False, COMMITTED_DISK)]),
        (sweep.STOP_SQL, [("state", False, SWEEP_STOPS)]),
        (course_money.POSITION_SQL, [("state", False, COMMITTED_DISK), ("state", True, ARCHIVE_RUN_ENDS)]),
        (workspaces.UNCONVERGED_SQL, [("desired_state", False, WANTS_DOWN), ("state", True, DOWN)]),
        (workspaces.LEASE_DISKS_SQL, [("state", False, COMMITTED_DISK)]),
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
PACKAGES = ("classroom", "provisioning", "lms_sync", "lti_app")
BY_HAND = re.compile(
    r"\b\w*state\s+(?:NOT\s+)?IN\s*\(\s*'|\bstate\s*=\s*'(" + "|".join(sorted(STATE_VALUES)) + ")'", re.IGNORECASE
)
# The schema's named enum types, read from the models: a cast to one is written by classroom.sql.enum_cast.
ENUM_TYPES = sorted(
    {c.type.name for t in Base.metadata.tables.values() for c in t.columns if isinstance(c.type, Enum) and c.type.name}
)
ENUM_CAST = re.compile(r"(?:\bAS\s+|::\s*)(" + "|".join(ENUM_TYPES) + r")\b", re.IGNORECASE)
# Values of these enums appear in SQL only through classroom.sql.sql_value (quoted literals are SQL here: ruff
# formats Python strings with double quotes).
STATUS_VALUES = sorted({m.value for e in (StaffLevel, EnrollmentStatus, GradeStatus, DeploymentStatus) for m in e})
STATUS_LITERAL = re.compile(r"'(" + "|".join(STATUS_VALUES) + ")'")


def by_hand(pattern: re.Pattern[str]) -> list[str]:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(SKIP):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    return offenders


def test_no_module_outside_classroom_sql_writes_a_state_into_sql_by_hand():
    assert by_hand(BY_HAND) == []


def test_no_module_outside_classroom_sql_casts_to_an_enum_type_by_hand():
    assert by_hand(ENUM_CAST) == []


def test_no_module_outside_classroom_sql_writes_a_status_or_level_literal_by_hand():
    assert by_hand(STATUS_LITERAL) == []


def test_the_enum_types_are_the_schemas():
    """The guards know the types and values they look for (an empty alternation would match nothing)."""
    assert {"staff_level", "enrollment_status", "grade_status", "deployment_status", "workspace_state"} <= set(
        ENUM_TYPES
    )
    assert {"student", "active", "dropped", "posting", "approved"} <= set(STATUS_VALUES)


@pytest.mark.parametrize(
    ("pattern", "line", "found"),
    [
        (ENUM_CAST, "SELECT CAST(:level AS staff_level), x", True),
        (ENUM_CAST, "SET status = v.status::grade_status", True),
        (ENUM_CAST, "CAST(:ids AS int[]), CAST(level AS text) AS level", False),
        (STATUS_LITERAL, "SELECT 1 FROM deployments WHERE status = 'approved'", True),
        (STATUS_LITERAL, "e.level = 'student' AND e.status = 'active'", True),
        (STATUS_LITERAL, "stop_mode = 'hibernate', actor = 'enforcement'", False),
        (BY_HAND, "AND n.to_state IN ('starting', 'running')", True),
        (BY_HAND, "WHERE state = 'running'", True),
        (BY_HAND, "WHERE state IN :ids", False),
    ],
)
def test_the_guards_recognise_hand_written_sql(pattern, line, found):  # type: ignore[no-untyped-def]
    assert bool(pattern.search(line)) is found


def test_the_moved_statements_cast_only_to_the_models_enum_types():
    """A cast to a type that is no PostgreSQL builtin names one the models declare (a renamed type changes the text)."""
    from classroom.sql import enrollments, grades

    statements = (
        enrollments.MEMBER_LAUNCH,
        enrollments.ROSTER_ADD_ENROLLMENTS,
        enrollments.ROSTER_SET_LEVELS,
        grades.RECORD_RESULTS_SQL,
    )
    casts = {m.group(1) for s in statements for m in re.finditer(r"\bAS\s+(\w+)\)", s.text)}
    assert casts - {"text", "int", "bigint", "boolean", "numeric", "timestamptz"} == {
        "staff_level",
        "enrollment_status",
        "grade_status",
    }
    assert casts & set(ENUM_TYPES) == {"staff_level", "enrollment_status", "grade_status"}
