"""Welcome messages (seed, Week 1): once per student, on roster sync, CSV import and at term start; a preview and
an off switch in course settings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from classroom.models import (
    AuditEvent,
    Course,
    CoursePolicy,
    DueDate,
    DueSource,
    Enrollment,
    Notification,
    OutboxEmail,
    Person,
)
from classroom.roles import StaffLevel
from lms_sync.context import lti_services
from lms_sync.jobs import welcome_at_term_start
from lms_sync.roster_sync import sync_roster
from lms_sync.welcome import WelcomeFacts, welcome_message
from lms_sync.welcome_send import welcome_students
from tests.conftest import count_rows
from tests.lms_sync.test_sync_web import GOOD, setup_course, signed_in, upload


def _policy(session, course_id: int, **overrides) -> CoursePolicy:
    values = dict(
        course_id=course_id,
        budget_per_student=Decimal("24"),
        total_budget=Decimal("1200"),
        templates={"ml-cpu-student": "approved"},
        default_template="ml-cpu-student",
        max_daily_cost=Decimal("2"),
    )
    values.update(overrides)
    policy = CoursePolicy(**values)
    session.add(policy)
    return policy


def _sync(session, lms, course, lms_ctx) -> None:
    sync_roster(session, course.course_id, lms=lti_services(session, lms_ctx, course.course_id))
    session.commit()


def test_the_message_names_materials_dates_helpers_and_how_to_connect():
    facts = WelcomeFacts(
        "CS 229 - Machine Learning",
        "Jennifer Martinez",
        Decimal(24),
        "t3.medium (2 vCPU, 4 GB RAM)",
        date(2024, 12, 13),
        "Canvas",
        term_start=date(2024, 9, 2),
        materials_path="/mnt/cs229-materials/",
        due_dates=(("Homework 1", date(2024, 9, 20)),),
        helpers=("Alex Rivera", "Priya Patel", "Kevin Wu"),
    )
    _, body = welcome_message(facts, "Emily Chen")
    for line in (
        "- Course materials: in /mnt/cs229-materials/ inside your workspace (read-only)",
        "- The term starts: September 2, 2024",
        "- Homework 1 is due: September 20, 2024",
        "Create or upload an SSH key",
        "Need help? Ask your TAs (Alex Rivera, Priya Patel or Kevin Wu) during office hours.",
    ):
        assert line in body


def test_a_roster_sync_welcomes_each_new_student_once_and_no_staff(session, lms, course, lms_ctx):
    _policy(session, course.course_id)
    session.add(DueDate(course_id=course.course_id, source=DueSource.LAUNCH_CUSTOM, key="hw1", title="Homework 1",
                        due_at=datetime(2099, 9, 20, 23, 59, tzinfo=UTC)))  # fmt: skip
    lms.add("ta-1", "ta", name="Alex Rivera")
    lms.add("s1", "student", name="Emily Chen", email="emily@u.edu")
    lms.add("s2", "student", name="David Kim", email="david@u.edu")
    _sync(session, lms, course, lms_ctx)
    notes = session.scalars(select(Notification).order_by(Notification.person_id)).all()
    subject = "Welcome to CS 229 - Machine Learning (Fall 2024) - your Cloud Workstation access"
    assert [n.subject for n in notes] == [subject] * 2
    emily = session.scalar(select(Person).where(Person.sub == "s1"))
    mail = session.scalar(select(OutboxEmail).where(OutboxEmail.to_address == "emily@u.edu"))
    assert mail.body.startswith("Hi Emily,") and "Homework 1 is due: September 20, 2099" in mail.body
    assert "Alex Rivera" in mail.body and "/mnt/cs229-materials/" in mail.body
    assert session.scalar(select(Enrollment.welcomed_at).where(Enrollment.person_id == emily.id)) is not None
    lms.add("s3", "student", name="Sophie Martinez", email="sophie@u.edu")
    _sync(session, lms, course, lms_ctx)  # a second sync welcomes only the newcomer
    _sync(session, lms, course, lms_ctx)
    assert count_rows(session.get_bind(), "notifications") == 3
    assert session.scalar(select(OutboxEmail.to_address).order_by(OutboxEmail.id.desc()).limit(1)) == "sophie@u.edu"
    assert welcome_students(session, session.get(Course, course.course_id)) == 0  # nobody left to welcome


def test_turned_off_nobody_is_welcomed(session, lms, course, lms_ctx):
    _policy(session, course.course_id, welcome_emails=False)
    lms.add("s1", "student", name="Emily Chen", email="emily@u.edu")
    _sync(session, lms, course, lms_ctx)
    assert count_rows(session.get_bind(), "notifications") == 0
    assert count_rows(session.get_bind(), "outbox_emails") == 0
    assert session.scalar(select(Enrollment.welcomed_at).where(Enrollment.level == StaffLevel.STUDENT)) is None


def test_the_term_start_job_welcomes_students_who_joined_another_way_once(session, course, lms_ctx):
    _policy(session, course.course_id)
    c = session.get(Course, course.course_id)
    c.term_start, c.term_end = date(2000, 1, 1), date(2999, 1, 1)
    emily = Person(platform_id=course.platform_id, sub="launch-1", name="Emily Chen", email="emily@u.edu")
    session.add(emily)
    session.flush()
    session.add(Enrollment(course_id=c.id, person_id=emily.id, lti_roles=[], level=StaffLevel.STUDENT))
    session.commit()
    assert welcome_at_term_start() == 1
    assert welcome_at_term_start() == 0
    session.expire_all()
    assert [n.person_id for n in session.scalars(select(Notification))] == [emily.id]


def test_not_before_the_term_starts(session, course, lms_ctx):
    _policy(session, course.course_id)
    c = session.get(Course, course.course_id)
    c.term_start = date(2999, 1, 1)
    person = Person(platform_id=course.platform_id, sub="launch-1", name="Emily Chen", email="emily@u.edu")
    session.add(person)
    session.flush()
    session.add(Enrollment(course_id=c.id, person_id=person.id, lti_roles=[], level=StaffLevel.STUDENT))
    session.commit()
    assert welcome_at_term_start() == 0
    assert count_rows(session.get_bind(), "notifications") == 0


def test_settings_preview_and_switch_turn_the_csv_welcome_off(client, session, engine, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    page = client.get("/app/welcome", query_string={"t": token})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Hi Emily," in html and "Budget: $24.00 for the whole term" in html
    assert 'name="welcome_emails" checked' in html
    off = client.post("/app/welcome", data={"t": token, "csrf_token": form_csrf})
    assert off.status_code == 303
    assert session.scalar(select(CoursePolicy.welcome_emails).where(CoursePolicy.course_id == course.id)) is False
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "course.welcome_emails"))
    assert event.details == {"enabled": False} and event.actor_person_id is not None
    preview = re.search(r'name="token" value="([^"]+)"', upload(client, token, form_csrf, GOOD).get_data(as_text=True))
    done = client.post("/sync/roster/import/confirm", data={"t": token, "csrf_token": form_csrf, "token": preview[1]})
    assert done.status_code == 200
    assert count_rows(engine, "enrollments") == 3 and count_rows(engine, "notifications") == 0


def test_students_and_tas_can_neither_see_nor_switch_it_and_csrf_is_required(client, session, engine, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    events = count_rows(engine, "audit_events")
    assert client.post("/app/welcome", data={"t": token}).status_code == 403  # no CSRF value
    for role in ("student", "ta"):
        other, other_csrf = signed_in(client, platform, role)
        events = count_rows(engine, "audit_events")
        assert client.get("/app/welcome", query_string={"t": other}).status_code == 403
        assert client.post("/app/welcome", data={"t": other, "csrf_token": other_csrf}).status_code == 403
        assert count_rows(engine, "audit_events") == events
    assert session.scalar(select(CoursePolicy.welcome_emails).where(CoursePolicy.course_id == course.id)) is True
