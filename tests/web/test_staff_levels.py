"""Staff levels are the owner's decision: Moodle's launch-Instructor / NRPS-Learner TAs, the staff page with the
LMS roles, the audited level selector, and refusals that write nothing."""

from __future__ import annotations

from sqlalchemy import select, text

from classroom.models import AuditEvent, Enrollment, Person
from classroom.roles import StaffLevel
from tests.conftest import count_rows
from tests.support.lti import hidden_fields, launch, register, tool_token
from tests.support.platform import LIS, User

MOODLE_TEACHER = [LIS + "membership#Instructor"]  # editing and non-editing teachers alike; never TeachingAssistant
MOODLE_STUDENT = [LIS + "membership#Learner"]


def person(sub: str, roles: list[str], name: str) -> User:
    return User(sub, name, f"{sub}@university.edu", roles)


MARTINEZ = person("2", MOODLE_TEACHER, "Jennifer Martinez")
ALEX = person("3", MOODLE_TEACHER, "Alex Thompson")
EMILY = person("9", MOODLE_STUDENT, "Emily Chen")


def enrollment(session, sub: str) -> Enrollment:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(Enrollment).join(Person).where(Person.sub == sub))  # type: ignore[return-value]


def moodle_course(client, session, moodle):  # type: ignore[no-untyped-def]
    register(session, moodle)
    owner = tool_token(launch(client, moodle, MARTINEZ, login_method="POST"))
    alex = tool_token(launch(client, moodle, ALEX, login_method="POST"))
    return owner, alex


def test_moodle_non_editing_teacher_launching_as_instructor_is_a_read_only_ta(client, session, moodle):
    owner, alex = moodle_course(client, session, moodle)
    assert enrollment(session, "2").level is StaffLevel.OWNER
    assert enrollment(session, "3").level is StaffLevel.TA
    # no configure rights: not the wizard, not the staff page, not the roster
    for path in ("/app/setup", "/app/staff", "/sync/roster"):
        assert client.get(path, query_string={"t": alex}).status_code == 403, path
    home = client.get("/app/home", query_string={"t": alex}).get_data(as_text=True)
    assert "read-only" in home


def test_owner_sees_lms_roles_and_raises_a_ta_to_head_ta_which_later_launches_keep(client, session, engine, moodle):
    owner, _ = moodle_course(client, session, moodle)
    page = client.get("/app/staff", query_string={"t": owner}).get_data(as_text=True)
    assert "Alex Thompson" in page and "Instructor" in page and "not synced yet" in page
    alex = enrollment(session, "3")
    resp = client.post(f"/app/staff/{alex.id}/level", data={**hidden_fields(page), "level": "head_ta"})
    assert resp.status_code == 303
    alex = enrollment(session, "3")
    assert alex.level is StaffLevel.HEAD_TA and alex.level_pinned
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "enrollment.level_set"))
    assert event.details == {"from": "ta", "to": "head_ta", "source": "owner"} and event.subject == str(alex.person_id)
    launch(client, moodle, ALEX, login_method="POST")  # Instructor again: the owner's level stays
    assert enrollment(session, "3").level is StaffLevel.HEAD_TA
    # the owner can take staff rights away too; a later Instructor launch does not give them back
    page = client.get("/app/staff", query_string={"t": owner}).get_data(as_text=True)
    assert (
        client.post(f"/app/staff/{alex.id}/level", data={**hidden_fields(page), "level": "student"}).status_code == 303
    )
    launch(client, moodle, ALEX, login_method="POST")
    assert enrollment(session, "3").level is StaffLevel.STUDENT
    assert count_rows(engine, "audit_events WHERE action = 'enrollment.level_set'") == 2


def test_level_changes_are_refused_without_csrf_for_non_owners_and_for_bad_values_and_write_nothing(
    app, client, session, engine, moodle
):
    from lti_app.auth import csrf_token

    owner, alex_token = moodle_course(client, session, moodle)
    launch(client, moodle, EMILY, login_method="POST")
    alex, emily, martinez = enrollment(session, "3"), enrollment(session, "9"), enrollment(session, "2")
    with app.app_context():
        owner_form = {"t": owner, "csrf_token": csrf_token(owner)}
        alex_form = {"t": alex_token, "csrf_token": csrf_token(alex_token)}
    audit = count_rows(engine, "audit_events")
    attempts = [
        (alex.id, {"t": owner, "level": "head_ta"}, 403),  # no CSRF value
        (alex.id, {**alex_form, "level": "instructor"}, 403),  # a TA cannot raise themself
        (alex.id, {**owner_form, "level": "owner"}, 400),  # ownership is not given here
        (alex.id, {**owner_form, "level": "superuser"}, 400),
        (martinez.id, {**owner_form, "level": "ta"}, 400),  # the owner is not demoted here
        (emily.id, {**owner_form, "level": "instructor"}, 400),  # never listed as staff by the LMS
        (999999, {**owner_form, "level": "ta"}, 400),
    ]
    for enrollment_id, form, status in attempts:
        assert client.post(f"/app/staff/{enrollment_id}/level", data=form).status_code == status, form
    assert count_rows(engine, "audit_events") == audit
    with engine.connect() as conn:
        levels = dict(conn.execute(text("SELECT id, CAST(level AS text) FROM enrollments")).all())
        assert not conn.execute(text("SELECT bool_or(level_pinned) FROM enrollments")).scalar()
    assert levels == {alex.id: "ta", emily.id: "student", martinez.id: "owner"}


def test_a_second_canvas_instructor_starts_read_only_and_canvas_tas_stay_tas(client, session, canvas):
    launch(client, canvas, canvas.user("instructor", 1))
    launch(client, canvas, canvas.user("instructor", 2))
    launch(client, canvas, canvas.user("ta", 1))
    launch(client, canvas, canvas.user("student", 1))
    assert enrollment(session, "instructor-1").level is StaffLevel.OWNER
    assert enrollment(session, "instructor-2").level is StaffLevel.TA
    assert enrollment(session, "ta-1").level is StaffLevel.TA
    launch(client, canvas, User("ta-1", "Alex", "a@u.edu", [LIS + "membership#Learner"]))  # a role change in Canvas
    assert enrollment(session, "ta-1").level is StaffLevel.TA  # a Learner role never demotes staff
    assert enrollment(session, "student-1").level is StaffLevel.STUDENT
