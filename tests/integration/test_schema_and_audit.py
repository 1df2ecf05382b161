"""Migrations up and down on PostgreSQL, the unmigrated-start refusal, and the append-only audit chain."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from classroom import schema
from classroom.audit import NewEvent, append_event, append_events, body_parts, verify_chain
from classroom.cli import main
from classroom.db import make_session_factory
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


def test_audit_chain_detects_events_cut_off_the_end(session, engine):
    for n in range(3):
        append_event(session, "test.event", subject=str(n))
    session.commit()
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
        conn.execute(text("DELETE FROM audit_events WHERE subject = '2'"))
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))
    report = verify_chain(session)
    assert not report.ok and report.checked == 2 and "removed" in report.reason


def test_concurrent_appends_never_share_a_previous_hash(engine):
    """Writers in separate transactions queue on the head row; each commit extends the chain by one link."""
    factory = make_session_factory(engine)

    def writer(n: int) -> None:
        for i in range(15):
            with factory() as s:
                append_event(s, "test.event", subject=f"{n}-{i}", details={"writer": n})
                s.commit()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with factory() as s:
        report = verify_chain(s)
        assert report.ok and report.checked == 60
        assert s.scalar(text("SELECT count(DISTINCT prev_hash) FROM audit_events")) == 60


@pytest.mark.parametrize(
    "details",
    [{}, {"n": 1, "note": "ünïcode ✓", "nested": {"b": [1, None, True], "a": 'x"y'}}, {"prev": "@", "z": 1.5}],
)
def test_event_body_pieces_are_the_canonical_json(details):
    at = datetime(2026, 11, 29, 5, 0, 1, 123456, tzinfo=UTC)
    for actor, course in ((None, None), (7, 12)):
        p0, p1, p2, p3 = body_parts(at, "a.b", 'subject "q"', details)
        body = p0 + json.dumps(actor) + p1 + json.dumps(course) + p2 + "f" * 64 + p3
        whole = {"prev": "f" * 64, "at": at.isoformat(), "action": "a.b", "actor": actor, "course": course}
        whole |= {"subject": 'subject "q"', "details": details}
        assert body == json.dumps(whole, sort_keys=True, separators=(",", ":"))
        assert body.isascii()


def test_per_course_chains_interleave_and_verify_and_tampering_is_found(session, engine):
    for n in range(6):  # courses 1 and 2 and events without a course, interleaved
        append_event(session, "test.event", course_id=(None, 1, 2)[n % 3], subject=str(n))
    append_events(session, [NewEvent("test.bulk", course_id=c, subject=f"b{c}") for c in (2, 1, 2, 3)])
    session.commit()
    report = verify_chain(session)
    assert report.ok and report.checked == 10
    heads = dict(session.execute(text("SELECT chain, hash FROM audit_chain_heads")).all())
    assert set(heads) == {-1, 0, 1, 2, 3}
    chain_2 = session.execute(text("SELECT prev_hash, hash FROM audit_events WHERE course_id = 2 ORDER BY id")).all()
    assert [p for p, _ in chain_2] == ["0" * 64] + [h for _, h in chain_2[:-1]] and heads[2] == chain_2[-1][1]
    with engine.begin() as conn:  # moving an event to another course breaks both chains
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
        conn.execute(text("UPDATE audit_events SET course_id = 1 WHERE subject = '5'"))
        conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))
    broken = verify_chain(session)
    assert not broken.ok and broken.checked == 5


def test_a_held_course_chain_does_not_block_another_course(engine):
    """Course A's head row locked by an open transaction: course B's append goes through at once; A's waits."""
    factory = make_session_factory(engine)
    with factory() as first:
        append_event(first, "test.event", course_id=1)
        first.commit()
    holder = factory()
    append_event(holder, "test.event", course_id=1, subject="holding A")  # A's head row stays locked
    with factory() as other:
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        append_event(other, "test.event", course_id=2, subject="B")  # would raise LockNotAvailable if serialised
        other.commit()
    with factory() as waiting:
        waiting.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(DBAPIError, match="lock timeout"):
            append_event(waiting, "test.event", course_id=1, subject="A again")
    holder.commit()
    holder.close()
    with factory() as s:
        assert verify_chain(s).ok and verify_chain(s).checked == 3


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
