"""What launches feed LMS sync (full LTI launches): service URLs, stale-roster syncs, line items, due dates,
CSV matches; and students seeing their upcoming deadlines with where each came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from classroom.jobs.queue import get_queue
from classroom.models import Course, CourseLms, DueDate, DueSource, Enrollment, LmsLineItem, Notification, Person
from lms_sync import progress
from lms_sync.csv_import import ImportRow
from lms_sync.roster_import import import_roster
from tests.support.lti import launch, register, tool_token

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"


def ags_claim(platform, item=None):
    claim = {
        "scope": [AGS + "lineitem", AGS + "score"],
        "lineitems": f"{platform.base_url}/api/lti/courses/1/line_items",
    }
    if item:
        claim["lineitem"] = f"{platform.base_url}/api/lti/courses/1/line_items/{item}?type_id=3"
    return claim


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def test_instructor_launch_stores_services_and_queues_one_roster_sync_when_stale(client, session, redis, platform):
    register(session, platform)
    resp = launch(client, platform, platform.user("instructor"), **{AGS_CLAIM: ags_claim(platform)})
    assert resp.status_code == 303
    course_id = session.scalar(select(Course.id))
    lms = session.get(CourseLms, course_id)
    assert lms.nrps_url == f"{platform.base_url}/nrps/cs229-fall2024"
    assert lms.ags_lineitems_url.endswith("/line_items") and AGS + "score" in lms.ags_scopes
    assert lms.canvas_course_id == "12345"
    assert get_queue(redis).get_job_ids() == [f"lms-roster-{course_id}"]
    assert progress.read_state(redis, course_id)["state"] == "queued"
    # a second instructor launch while the sync waits queues nothing more; a student launch never does
    assert launch(client, platform, platform.user("instructor")).status_code == 303
    assert launch(client, platform, platform.user("student")).status_code == 303
    assert len(get_queue(redis)) == 1


def test_fresh_roster_is_not_synced_again_on_launch(client, session, redis, platform):
    register(session, platform)
    assert launch(client, platform, platform.user("instructor")).status_code == 303
    course_id = session.scalar(select(Course.id))
    get_queue(redis).empty()
    progress.update_state(redis, course_id, state="done", synced_at=datetime.now(UTC).timestamp())
    assert launch(client, platform, platform.user("instructor")).status_code == 303
    assert len(get_queue(redis)) == 0


def test_graded_link_launch_records_its_line_item_and_due_date_and_students_see_it(client, session, redis, platform):
    register(session, platform)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=6, hours=2)
    custom = {
        "due_at": iso(due),
        "assignment_title": "Homework 1 - Linear Regression",
        "resource_end_at": "$ResourceLink.submission.endDateTime",
    }
    student = platform.user("student")
    resp = launch(client, platform, student, **{AGS_CLAIM: ags_claim(platform, item=7), CUSTOM: custom})
    token = tool_token(resp)
    course_id = session.scalar(select(Course.id))
    item = session.scalar(select(LmsLineItem))
    assert item.url.endswith("/line_items/7?type_id=3") and item.label == "Homework 1 - Linear Regression"
    fact = session.scalar(select(DueDate))
    assert fact.source is DueSource.LAUNCH_CUSTOM and fact.due_at == due and fact.key == "link-1"
    page = client.get("/app/home", query_string={"t": token})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Upcoming deadlines" in html and "Homework 1 - Linear Regression" in html
    assert "in 6 days" in html and "From assignment link" in html
    # the same link launched again with the same date writes nothing new
    assert launch(client, platform, student, **{CUSTOM: custom}).status_code == 303
    assert len(session.scalars(select(DueDate).where(DueDate.course_id == course_id)).all()) == 1


def test_unexpanded_or_past_due_dates_are_not_shown(client, session, platform):
    register(session, platform)
    custom = {"due_at": "$Canvas.assignment.dueAt.iso8601"}
    resp = launch(client, platform, platform.user("student"), **{CUSTOM: custom})
    assert session.scalar(select(DueDate)) is None
    html = client.get("/app/home", query_string={"t": tool_token(resp)}).get_data(as_text=True)
    assert "No upcoming deadlines" in html


def test_a_csv_imported_student_is_matched_on_first_launch(client, session, platform):
    register(session, platform)
    assert launch(client, platform, platform.user("instructor")).status_code == 303
    course = session.scalar(select(Course))
    owner = session.scalar(select(Person).where(Person.sub == "instructor-1"))
    import_roster(
        session,
        course,
        [ImportRow(2, "student1@university.edu", "Emily Chen", "Section B")],
        actor_person_id=owner.id,
        file_format="email, name, section",
    )
    session.commit()
    assert session.scalar(select(Notification.subject)).startswith("Welcome to CS 229")
    resp = launch(client, platform, platform.user("student"))
    assert resp.status_code == 303
    session.expire_all()
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    enrollment = session.scalar(select(Enrollment).where(Enrollment.person_id == emily.id))
    assert enrollment.section == "Section B"
    assert session.scalar(select(Person).where(Person.sub.like("csv:%"))) is None
    assert session.scalar(select(Notification.person_id)) == emily.id  # the welcome message followed her
