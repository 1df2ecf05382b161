"""Every lock on more than one workspace row is taken in workspace-id order, so two such paths at once (the term
end closing a course while a student's workspaces are stopped, a reopen beside either) wait for each other
instead of deadlocking. Watched as the SQL each path sends to PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from classroom.services.reopen import reopen_workspaces
from classroom.services.workspaces import stop_workspaces_for_person
from provisioning.term_end import run_term_end, term_end_instant
from tests.budget.test_term_end import _course
from tests.support.budget import make_running

ONE_ROW = re.compile(r"workspaces\.id = ")  # a lock on one row by its key needs no order


@contextmanager
def workspace_locks(session) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The statements that lock workspace rows and wait for them (SKIP LOCKED never waits), as sent."""
    seen: list[str] = []

    def watch(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FOR UPDATE" in statement and "FROM workspaces" in statement and "SKIP LOCKED" not in statement:
            seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", watch)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", watch)


def test_paths_that_lock_several_workspaces_lock_them_in_id_order(session):
    course, _owner, emily = _course(session)
    for link in ("hw1", "hw2"):
        make_running(session, course.id, emily.id, datetime(2024, 12, 1, tzinfo=UTC), link=link)
    session.commit()
    with workspace_locks(session) as seen:
        stop_workspaces_for_person(session, course.id, emily.id, reason="dropped", actor="lms-sync")
        session.rollback()
        run_term_end(session, term_end_instant(course).astimezone(UTC) + timedelta(seconds=1))
        session.commit()
        reopen_workspaces(session, course.id, None)
        session.commit()
    several = [s for s in seen if not ONE_ROW.search(s)]
    assert len(several) >= 3, seen  # each path locked its rows
    assert [s for s in several if "ORDER BY workspaces.id" not in s] == []
