"""The dashboard's loading on real PostgreSQL: each flag from the rows that raise it, and a statement count that
does not grow with the class."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import ActivityEvent, BudgetGrant, DueDate, DueSource, SpendDaily, Workspace
from classroom.roles import StaffLevel
from classroom.services.dashboard import due_soon, load_facts
from classroom.services.help_requests import ask_for_help
from classroom.services.messages import Draft, send_message
from classroom.workspaces.lifecycle import WorkspaceState
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person


def _by_name(facts):  # type: ignore[no-untyped-def]
    return {f.name: f for f in facts}


def test_every_flag_comes_from_its_rows_and_other_courses_never_mix_in(tx_session):
    s, now = tx_session, utcnow()
    course, other = make_course(s), make_course(s)
    make_policy(s, course)
    alex = make_person(s, course, level=StaffLevel.HEAD_TA, name="Alex Thompson")
    emily, david = make_person(s, course, name="Emily Chen"), make_person(s, course, name="David Kim")
    sophie, stranger = make_person(s, course, name="Sophie Martin"), make_person(s, other, name="Olga Other")
    running = make_running(s, course.id, emily.id, now - timedelta(hours=2), last_active=now - timedelta(minutes=5))
    broken = make_running(s, course.id, david.id, now - timedelta(days=9), last_active=now - timedelta(days=9))
    broken.state = WorkspaceState.STOPPED
    reset = make_running(s, course.id, sophie.id, now - timedelta(days=1), last_active=now - timedelta(days=5))
    s.add(ActivityEvent(workspace_id=reset.id, event_id="e1", kind="file_changed", at=now - timedelta(hours=1)))
    for _ in range(2):
        append_event(s, "workspace.start_failed", course_id=course.id, subject=str(broken.id))
    append_event(s, "workspace.reset", actor_person_id=alex.id, course_id=course.id, subject=str(reset.id))
    append_event(s, "workspace.start_failed", course_id=other.id, subject=str(broken.id))  # another course's event
    s.add(SpendDaily(course_id=course.id, person_id=david.id, day=now.date(), compute=Decimal(23), storage=0,
                     running_seconds=0))  # fmt: skip
    s.add(BudgetGrant(course_id=course.id, person_id=emily.id, amount=Decimal(6), reason="GPU week", granted_by=1))
    s.add(DueDate(course_id=course.id, source=DueSource.LAUNCH_CUSTOM, key="hw3", due_at=now + timedelta(days=1)))
    s.add(DueDate(course_id=other.id, source=DueSource.LAUNCH_CUSTOM, key="x", due_at=now + timedelta(hours=3)))
    ask_for_help(s, course.id, sophie.id, message="NaN loss")
    send_message(s, course.id, author_id=alex.id, student_id=david.id, draft=Draft("Hi", "Start early", client_key="1"))
    s.flush()
    soon = due_soon(s, course.id, now)
    facts = _by_name(load_facts(s, course.id, now))
    assert set(facts) == {"Emily Chen", "David Kim", "Sophie Martin"} and len(soon) == 1  # no staff, no other course
    e, d, so = facts["Emily Chen"], facts["David Kim"], facts["Sophie Martin"]
    assert e.state == "running" and e.state_since is not None and e.cap == Decimal(30)
    assert d.failed_starts == 2 and d.spent == Decimal(23) and d.unread_by_student == 1 and d.state == "stopped"
    assert so.last_reset is not None and so.open_help == 1 and so.help_id is not None
    assert so.last_activity is not None and now - so.last_activity < timedelta(hours=2)  # the agent's event counts
    from classroom.dashboard_rules import build_rows

    flags = {r.facts.name: r.flags for r in build_rows(facts.values(), now, soon)}
    assert flags == {"Emily Chen": (), "David Kim": ("inactive_before_due", "failed_starts", "budget_90"),
                     "Sophie Martin": ("recent_reset", "help_open")}  # fmt: skip
    assert running.id and stranger.id


def test_the_statement_count_does_not_grow_with_the_class(tx_session, engine):
    s, now = tx_session, utcnow()
    course = make_course(s)
    make_policy(s, course)
    counts = []
    for size in (3, 30):
        while len(load_facts(s, course.id, now)) < size:
            p = make_person(s, course, name=f"Student {len(counts)} {now.timestamp()}")
            make_running(s, course.id, p.id, now - timedelta(hours=1))
            ask_for_help(s, course.id, p.id, message="help")
        s.flush()
        seen: list[str] = []

        def listener(*args: object, seen: list[str] = seen) -> None:
            seen.append(str(args[2]))

        event.listen(s.connection().engine, "before_cursor_execute", listener)
        load_facts(s, course.id, now)
        due_soon(s, course.id, now)
        event.remove(s.connection().engine, "before_cursor_execute", listener)
        counts.append(len(seen))
    assert counts[0] == counts[1] == 3
    assert s.query(Workspace).count() >= 30
