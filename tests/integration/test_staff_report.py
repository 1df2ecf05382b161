"""The term's final report counts staff actions from the audit trail (debug sessions, resets, messages) and
names the most active staff member; other courses and system events do not count."""

from __future__ import annotations

from classroom.audit import append_event
from classroom.roles import StaffLevel
from classroom.services.staff_report import staff_activity
from tests.support.factories import make_course, make_person


def test_staff_actions_are_counted_per_course(tx_session):  # type: ignore[no-untyped-def]
    course, other = make_course(tx_session), make_course(tx_session)
    alex = make_person(tx_session, course, name="Alex Thompson", level=StaffLevel.HEAD_TA)
    priya = make_person(tx_session, course, name="Priya Sharma", level=StaffLevel.TA)
    for _ in range(2):
        append_event(tx_session, "debug.session.start", actor_person_id=alex.id, course_id=course.id)
    append_event(tx_session, "workspace.reset", actor_person_id=alex.id, course_id=course.id)
    append_event(tx_session, "message.sent", actor_person_id=priya.id, course_id=course.id)
    append_event(tx_session, "debug.session.start", actor_person_id=alex.id, course_id=other.id)
    append_event(tx_session, "debug.session.end", actor_person_id=None, course_id=course.id)  # expiry: no actor
    report = staff_activity(tx_session, course.id)
    assert (report.debug_sessions, report.resets, report.messages) == (2, 1, 1)
    assert report.most_active == ("Alex Thompson", 3)
    assert "2 debug session(s), 1 workspace reset(s), 1 message(s); most active: Alex Thompson" in report.lines()
    assert staff_activity(tx_session, make_course(tx_session).id).lines().endswith("0 message(s).")
