"""The sync pages through full LTI launches: CSV import (preview, per-row errors, nothing partial, welcome
messages), grade entry by instructors and TAs, retry of failed grades, roles and CSRF."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from io import BytesIO

from sqlalchemy import func, select

from classroom.jobs.queue import get_queue
from classroom.models import (
    AuditEvent,
    Course,
    CoursePolicy,
    Enrollment,
    GradeStatus,
    LmsGrade,
    LmsLineItem,
    Notification,
    OutboxEmail,
    Person,
)
from tests.conftest import count_rows
from tests.support.lti import launch, register, tool_token

GOOD = b"email,name,section\nemily.chen@university.edu,Emily Chen,Section A\ndavid.kim@university.edu,David Kim,B\n"
BAD = GOOD + b"not-an-email,Someone,B\nemily.chen@university.edu,Emily Again,A\n"


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def signed_in(client, platform, role, n=1):
    """A launch as this user: the tool token and the CSRF value its forms carry."""
    from lti_app.auth import csrf_token

    token = tool_token(launch(client, platform, platform.user(role, n)))
    with client.application.test_request_context():
        return token, csrf_token(token)


def setup_course(client, session, platform):
    register(session, platform)
    token, form_csrf = signed_in(client, platform, "instructor")
    course = session.scalar(select(Course))
    course.term_end = date(2024, 12, 13)
    session.add(
        CoursePolicy(
            course_id=course.id,
            budget_per_student=Decimal("24"),
            total_budget=Decimal("1200"),
            templates={"ml-cpu-student": "approved"},
            default_template="ml-cpu-student",
            max_daily_cost=Decimal("2"),
        )
    )
    session.commit()
    return course, token, form_csrf


def upload(client, token, form_csrf, data, name="students.csv"):
    return client.post(
        "/sync/roster/import",
        data={"t": token, "csrf_token": form_csrf, "roster": (BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_a_file_with_errors_previews_them_by_line_and_imports_nothing(client, session, engine, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    people, enrollments = count_rows(engine, "people"), count_rows(engine, "enrollments")
    resp = upload(client, token, form_csrf, BAD)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "2 row(s) with errors" in html and "<td>4</td>" in html and "is already on line 2" in html
    assert "Nothing has been imported yet" in html
    preview = re.search(r'name="token" value="([^"]+)"', html).group(1)
    refused = client.post("/sync/roster/import/confirm", data={"t": token, "csrf_token": form_csrf, "token": preview})
    assert refused.status_code == 409 and "Nothing was imported" in refused.get_data(as_text=True)
    assert (count_rows(engine, "people"), count_rows(engine, "enrollments")) == (people, enrollments)
    assert count_rows(engine, "notifications") == 0 and count_rows(engine, "outbox_emails") == 0
    # the instructor chooses to import the valid rows
    ok = client.post(
        "/sync/roster/import/confirm", data={"t": token, "csrf_token": form_csrf, "token": preview, "valid_only": "on"}
    )
    assert ok.status_code == 200 and "2 added" in ok.get_data(as_text=True)
    assert count_rows(engine, "enrollments") == enrollments + 2
    again = client.post(
        "/sync/roster/import/confirm", data={"t": token, "csrf_token": form_csrf, "token": preview, "valid_only": "on"}
    )
    assert again.status_code == 410  # the preview was used up


def test_import_sends_the_seeds_welcome_message_in_the_tool_and_by_email(client, session, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    resp = upload(client, token, form_csrf, GOOD)
    assert resp.status_code == 200
    preview = re.search(r'name="token" value="([^"]+)"', resp.get_data(as_text=True)).group(1)
    done = client.post("/sync/roster/import/confirm", data={"t": token, "csrf_token": form_csrf, "token": preview})
    assert done.status_code == 200
    emily = session.scalar(select(Person).where(Person.email == "emily.chen@university.edu"))
    assert emily.sub == "csv:emily.chen@university.edu"
    enrollment = session.scalar(select(Enrollment).where(Enrollment.person_id == emily.id))
    assert enrollment.section == "Section A" and enrollment.level.value == "student"
    note = session.scalar(select(Notification).where(Notification.person_id == emily.id))
    mail = session.scalar(select(OutboxEmail).where(OutboxEmail.to_address == "emily.chen@university.edu"))
    for body in (note.body, mail.body):
        assert body.startswith("Hi Emily,") and "Budget: $24.00 for the whole term" in body
        assert "t3.medium" in body and "The term ends: December 13, 2024" in body and "Jennifer Martinez" in body
        assert "click the Cloud Workstation link" in body
    audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "roster.imported"))
    assert audit.details["added"] == 2 and audit.actor_person_id is not None
    dev = client.get("/dev/mail")
    assert dev.status_code == 200 and "Welcome to CS 229" in dev.get_data(as_text=True)


def test_unreadable_files_are_refused_with_a_clear_message(client, session, engine, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    resp = upload(client, token, form_csrf, "email,name\nrené@u.edu,René\n".encode("latin-1"))
    assert resp.status_code == 400 and "not UTF-8" in resp.get_data(as_text=True)
    assert client.post("/sync/roster/import", data={"t": token, "csrf_token": form_csrf}).status_code == 400


def test_students_and_tas_cannot_import_or_sync(client, session, engine, platform):
    setup_course(client, session, platform)
    people = count_rows(engine, "people")
    for role in ("student", "ta"):
        token, form_csrf = signed_in(client, platform, role)
        assert client.get("/sync/roster", query_string={"t": token}).status_code == 403
        assert upload(client, token, form_csrf, GOOD).status_code == 403
        assert client.post("/sync/roster/now", data={"t": token, "csrf_token": form_csrf}).status_code == 403
    assert count_rows(engine, "people") == people + 2  # only the two launches


def test_forms_need_the_csrf_value(client, session, engine, platform):
    course, token, _ = setup_course(client, session, platform)
    assert upload(client, token, "wrong", GOOD).status_code == 403
    assert client.post("/sync/roster/now", data={"t": token}).status_code == 403


def test_sync_now_without_a_roster_service_says_so(client, session, redis, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    page = client.get("/sync/roster", query_string={"t": token})
    assert page.status_code == 200 and "Sync now" in page.get_data(as_text=True)
    get_queue(redis).empty()
    resp = client.post("/sync/roster/now", data={"t": token, "csrf_token": form_csrf})
    assert resp.status_code == 303
    assert get_queue(redis).get_job_ids() == [f"lms-roster-{course.id}"]
    status = client.get("/sync/roster/status", query_string={"t": token}, headers={"Accept": "application/json"})
    assert status.status_code == 200 and status.get_json()["state"] == "queued"


def grade_setup(client, session, platform):
    course, token, form_csrf = setup_course(client, session, platform)
    students = []
    for n in (1, 2):
        signed_in(client, platform, "student", n)
        students.append(session.scalar(select(Person.id).where(Person.sub == f"student-{n}")))
    resp = client.post(
        "/sync/line-items", data={"t": token, "csrf_token": form_csrf, "label": "Homework 1", "points": "10"}
    )
    assert resp.status_code == 303
    item = session.scalar(select(LmsLineItem))
    return course, item, students


def test_a_ta_enters_scores_and_comments_and_the_passback_is_queued(client, session, redis, platform):
    course, item, (emily, david) = grade_setup(client, session, platform)
    get_queue(redis).empty()
    token, form_csrf = signed_in(client, platform, "ta")  # Priya and Kevin "submit grades"
    page = client.get("/sync/grades", query_string={"t": token, "item": item.id})
    assert page.status_code == 200 and "Homework 1" in page.get_data(as_text=True)
    resp = client.post(
        f"/sync/grades/{item.id}",
        data={
            "t": token,
            "csrf_token": form_csrf,
            f"score-{emily}": "9.5",
            f"comment-{emily}": "Nice",
            f"score-{david}": "",
        },
    )
    assert resp.status_code == 303
    grade = session.scalar(select(LmsGrade))
    assert grade.person_id == emily and grade.score_given == Decimal("9.5") and grade.status is GradeStatus.PENDING
    assert get_queue(redis).get_job_ids() == [f"lms-passback-{course.id}"]
    audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "grade.entered"))
    assert audit.subject == str(emily) and audit.details["score"] == "9.5"


def test_bad_scores_save_nothing_and_say_which(client, session, platform):
    course, item, (emily, david) = grade_setup(client, session, platform)
    token, form_csrf = signed_in(client, platform, "instructor")
    resp = client.post(
        f"/sync/grades/{item.id}",
        data={"t": token, "csrf_token": form_csrf, f"score-{emily}": "11", f"score-{david}": "abc"},
    )
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "above the maximum of 10" in html and "is not a number" in html and "Nothing was saved" in html
    assert session.scalar(select(LmsGrade)) is None
    bad = client.post("/sync/line-items", data={"t": token, "csrf_token": form_csrf, "label": "", "points": "x"})
    assert bad.status_code == 400 and len(session.scalars(select(LmsLineItem)).all()) == 1


def test_students_cannot_see_or_enter_grades(client, session, engine, platform):
    course, item, (emily, _) = grade_setup(client, session, platform)
    token, form_csrf = signed_in(client, platform, "student")
    assert client.get("/sync/grades", query_string={"t": token}).status_code == 403
    resp = client.post(f"/sync/grades/{item.id}", data={"t": token, "csrf_token": form_csrf, f"score-{emily}": "10"})
    assert resp.status_code == 403 and count_rows(engine, "lms_grades") == 0


def test_failed_grades_show_why_with_a_retry_button(client, session, redis, platform):
    course, item, (emily, _) = grade_setup(client, session, platform)
    session.add(
        LmsGrade(
            course_id=course.id,
            line_item_id=item.id,
            person_id=emily,
            score_given=Decimal(8),
            score_maximum=Decimal(10),
            comment="",
            status=GradeStatus.REJECTED,
            last_error="The LMS says this student is not enrolled in the course (HTTP 422).",
        )
    )
    session.commit()
    token, form_csrf = signed_in(client, platform, "ta")
    html = client.get("/sync/grades", query_string={"t": token, "item": item.id}).get_data(as_text=True)
    assert "Refused by the LMS" in html and "not enrolled" in html and ">Retry</button>" in html
    grade = session.scalar(select(LmsGrade))
    get_queue(redis).empty()
    resp = client.post("/sync/grades/retry", data={"t": token, "csrf_token": form_csrf, "grade_id": str(grade.id)})
    assert resp.status_code == 303
    session.refresh(grade)
    assert grade.status is GradeStatus.PENDING and grade.last_error == ""
    assert get_queue(redis).get_job_ids() == [f"lms-passback-{course.id}"]


def test_nav_links_follow_the_role(client, session, platform):
    setup_course(client, session, platform)
    for role, roster, grades in (("instructor", True, True), ("ta", False, True), ("student", False, False)):
        token, _ = signed_in(client, platform, role)
        html = client.get("/app/home", query_string={"t": token}).get_data(as_text=True)
        assert ("Roster and due dates" in html) is roster and (">Grades<" in html) is grades, role


def test_the_instructor_turns_usage_passback_on_and_tas_cannot(client, session, platform):
    from classroom.models import CourseLms

    course, token, form_csrf = setup_course(client, session, platform)
    resp = client.post("/sync/usage", data={"t": token, "csrf_token": form_csrf, "usage_passback": "on"})
    assert resp.status_code == 303
    session.expire_all()
    assert session.get(CourseLms, course.id).usage_passback is True
    assert session.scalar(select(AuditEvent.details).where(AuditEvent.action == "usage_passback.changed")) == {
        "enabled": True,
        "mode": "comment",
    }
    ta, ta_csrf = signed_in(client, platform, "ta")
    assert client.post("/sync/usage", data={"t": ta, "csrf_token": ta_csrf}).status_code == 403
    session.expire_all()
    assert session.get(CourseLms, course.id).usage_passback is True


def test_the_instructor_chooses_the_usage_column_and_a_bad_choice_writes_nothing(client, session, platform):
    from classroom.models import CourseLms

    course, token, form_csrf = setup_course(client, session, platform)
    html = client.get("/sync/roster", query_string={"t": token}).get_data(as_text=True)
    assert 'name="usage_mode" value="comment" aria-describedby="usage-comment-help" checked' in html
    assert "The grade is not changed" in html
    data = {"t": token, "csrf_token": form_csrf, "usage_passback": "on", "usage_mode": "column"}
    assert client.post("/sync/usage", data=data).status_code == 303
    session.expire_all()
    row = session.get(CourseLms, course.id)
    assert (row.usage_passback, row.usage_mode) == (True, "column")
    html = client.get("/sync/roster", query_string={"t": token}).get_data(as_text=True)
    assert 'name="usage_mode" value="column" aria-describedby="usage-column-help" checked' in html
    events = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "usage_passback.changed")
    )
    resp = client.post("/sync/usage", data={**data, "usage_passback": "", "usage_mode": "grades"})
    assert resp.status_code == 400 and "“usage_mode” must be" in resp.get_data(as_text=True)
    session.expire_all()
    row = session.get(CourseLms, course.id)
    assert (row.usage_passback, row.usage_mode) == (True, "column")
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "usage_passback.changed")
        )
        == events
    )


def test_saving_one_grade_says_so_and_not_that_course_settings_were_saved(client, session, platform):
    course, item, (emily, _) = grade_setup(client, session, platform)
    token, form_csrf = signed_in(client, platform, "ta")
    resp = client.post(f"/sync/grades/{item.id}", data={"t": token, "csrf_token": form_csrf, f"score-{emily}": "7"})
    assert resp.status_code == 303
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "1 grade(s) saved" in html
    assert "Course settings saved" not in html


def test_the_roster_page_keeps_polling_while_a_retry_is_coming_and_shows_the_latest_attempt(
    client, session, redis, platform
):
    from lms_sync import progress

    course, token, _ = setup_course(client, session, platform)
    progress.update_state(redis, course.id, state="retrying", at=1733011200.0, message="it will be tried again")
    html = client.get("/sync/roster", query_string={"t": token}).get_data(as_text=True)
    assert 'data-poll="1"' in html and "will be tried again shortly" in html and "The last sync" not in html
    status = client.get("/sync/roster/status", query_string={"t": token}).get_json()
    assert status["state"] == "retrying"
    progress.update_state(redis, course.id, state="done", at=1733011500.0, members=3, pages=1, counts={})
    html = client.get("/sync/roster", query_string={"t": token}).get_data(as_text=True)
    assert 'data-poll="1"' not in html and "Last synced at" in html and "The last sync" not in html


def test_usage_passback_is_off_after_the_first_launch_and_the_page_says_what_the_lms_will_do(client, session, platform):
    from classroom.models import CourseLms

    course, token, _ = setup_course(client, session, platform)
    session.expire_all()
    assert session.get(CourseLms, course.id).usage_passback is False
    html = client.get("/sync/roster", query_string={"t": token}).get_data(as_text=True)
    assert 'name="usage_passback" aria-describedby="usage-explained" >' in html  # not checked
    assert "counts in course totals" in html
    for lms in ("Canvas:", "Moodle:", "Blackboard Learn:", "D2L Brightspace:"):
        assert lms in html
