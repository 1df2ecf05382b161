"""Schema migrations (Alembic) and the start-up check that refuses an unmigrated database."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_HINT = "python -m classroom db upgrade"


class SchemaNotMigrated(RuntimeError):
    """The database is behind (or ahead of) the code's migrations."""


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave the Demo LMS tables (demo_*, own hand-written migration) out of autogenerate."""
    return not (type_ == "table" and (name or "").startswith("demo_"))


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic config that runs on the given engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def head_revisions(engine: Engine) -> set[str]:
    """The revisions the code expects (the same for every engine)."""
    return set(_code_heads())


@functools.cache
def _code_heads() -> frozenset[str]:
    """The heads of the migration scripts shipped with this code, read once per process: Alembic loads every
    script to find them (about 50 ms), and the scripts cannot change under a running process."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at."""
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def check_migrated(engine: Engine) -> None:
    """Raise SchemaNotMigrated with what to run if the database is not at the code's head."""
    heads, current = head_revisions(engine), current_revisions(engine)
    if heads != current:
        state = ", ".join(sorted(current)) or "empty (no migrations applied)"
        raise SchemaNotMigrated(
            f"The database schema is not migrated: it is at {state}, the code needs "
            f"{', '.join(sorted(heads))}. Run `{UPGRADE_HINT}` (with the same DATABASE_URL) and start again."
        )
