"""Migrations up and down on PostgreSQL, the unmigrated-start refusal, and the append-only audit chain."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from classroom import schema
from classroom.audit import append_event, verify_chain
from classroom.cli import main
from config.settings import Settings


def test_migrations_downgrade_to_base_and_upgrade_again(engine):
    assert schema.current_revisions(engine) == schema.head_revisions(engine)
    schema.downgrade(engine, "base")
    assert schema.current_revisions(engine) == set()
    leftover = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert leftover == set()
    with engine.connect() as conn:
        types = conn.execute(text("SELECT typname FROM pg_type WHERE typname IN ('staff_level','key_status')")).all()
    assert types == []
    schema.upgrade(engine)
    assert schema.current_revisions(engine) == schema.head_revisions(engine)
    schema.check_migrated(engine)


def test_app_refuses_to_start_on_unmigrated_database(engine, database_url, redis_url):
    from lti_app import create_app

    schema.downgrade(engine, "base")
    settings = Settings(secret_key="x" * 40, database_url=database_url, redis_url=redis_url, env="test")
    with pytest.raises(schema.SchemaNotMigrated, match="python -m classroom db upgrade"):
        create_app(settings)


def test_audit_chain_verifies_and_detects_tampering(session, engine):
    for n in range(5):
        append_event(session, "test.event", subject=str(n), details={"n": n, "note": "ünïcode"})
    session.commit()
    report = verify_chain(session)
    assert report.ok and report.checked == 5
    with engine.begin() as conn:  # a superuser bypassing the trigger, as an attacker with DB access would
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
        conn.execute(text("UPDATE audit_events SET details = '{\"n\": 99}' WHERE subject = '2'"))
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))
    session.expire_all()
    broken = verify_chain(session)
    assert not broken.ok and broken.checked == 2


def test_audit_log_refuses_update_and_delete(session):
    append_event(session, "test.event")
    session.commit()
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()


def test_audit_verify_cli(session, database_url, monkeypatch):
    append_event(session, "test.event")
    session.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 0 and "audit chain ok: 1 events" in result.output


def test_models_and_migrations_agree(engine):
    """Every model change ships a migration: autogenerate finds nothing left to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import classroom.models  # noqa: F401
    from classroom.db import Base
    from classroom.schema import include_object

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
