"""Raw SQL, one module per aggregate, with state lists, state literals and enum casts generated from the enums.

A statement is raw only where one set-based pass does what the ORM would do in many round trips; each says why.
Nothing here interpolates input: only enum values and type names, which are code. `tests/unit/test_sql_states.py`
checks every statement's state sets against `classroom.workspaces.lifecycle` and that no other module writes a
workspace state, a level, membership, grade or deployment status, or a cast to an enum type into SQL text by hand.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import Enum
from sqlalchemy.orm import InstrumentedAttribute


def sql_states(states: Iterable[enum.StrEnum]) -> str:
    """A SQL list literal of the values, sorted, e.g. "('running', 'stopping')", for statements built at import."""
    return "(" + ", ".join(sql_value(s) for s in sorted(states, key=lambda s: s.value)) + ")"


def sql_value(value: enum.StrEnum) -> str:
    """One enum value as a SQL string literal, e.g. "'running'"."""
    return "'" + value.value.replace("'", "''") + "'"


def enum_cast(expression: str, column: InstrumentedAttribute) -> str:  # type: ignore[type-arg]
    """`CAST(expression AS <the column's PostgreSQL enum type>)`, the type name read from the model."""
    kind = column.property.columns[0].type
    assert isinstance(kind, Enum) and kind.name, f"{column} is not a named enum column"
    return f"CAST({expression} AS {kind.name})"
