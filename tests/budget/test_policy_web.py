"""Policy in the pages: set-up wizard, blocked and over-budget launches create nothing, request and approval."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from classroom.models import (
    AuditEvent,
    Course,
    CoursePolicy,
    Notification,
    OutboxEmail,
    SpendDaily,
    TemplateRequest,
)
from tests.conftest import count_rows
from tests.support.budget import SETUP_FORM, ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
FORM = {**SETUP_FORM}


def _link(template: str, link_id: str = "link-final") -> dict[str, object]:
    return {LTI + "custom": {"template": template}, LTI + "resource_link": {"id": link_id, "title": "Final project"}}


def test_owner_is_sent_to_the_wizard_and_saving_it_is_audited(client, canvas, session):
    resp = launch(client, canvas, canvas.user("instructor"))
    assert "/app/setup" in resp.headers["Location"]
    page = client.get("/app/setup", query_string={"t": tool_token(resp)}).get_data(as_text=True)
    assert "Set up Cloud Workstation" in page and 'value="24.00"' in page
    bad = client.post("/app/setup", data={**hidden_fields(page), **FORM, "budget_per_student": "lots"})
    assert bad.status_code == 400 and b"Nothing was saved" in bad.data
    assert count_rows(session.get_bind(), "course_policies") == 0
    ok = client.post("/app/setup", data={**hidden_fields(page), **FORM})
    assert ok.status_code == 303
    assert "Course settings saved" in client.get(ok.headers["Location"]).get_data(as_text=True)
    policy = session.scalar(select(CoursePolicy))
    assert policy.budget_per_student == Decimal(24) and policy.templates["gpu-ml-workstation"] == "blocked"
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "policy.created"))
    again = launch(client, canvas, canvas.user("instructor"))
    assert "/app/home" in again.headers["Location"]


def test_student_blocked_from_gpu_with_the_educational_message_and_nothing_created(client, canvas, session, redis):
    launch(client, canvas, canvas.user("student", 9))
    ensure_policies(session)
    token = tool_token(launch(client, canvas, canvas.user("student"), **_link("gpu-ml-workstation")))
    resp = client.get("/app/workspace", query_string={"t": token})
    assert resp.status_code == 403
    html = resp.get_data(as_text=True)
    assert "Launch blocked: template not approved" in html and "p3.2xlarge, $73.82/day" in html
    assert "ML CPU workspace (t3.medium, $1.20/day)" in html and "$0.00 / $24.00 (0%)" in html
    assert count_rows(session.get_bind(), "workspaces") == 0
    assert not list(redis.scan_iter("rq:job:provision_workspace-*"))


def test_student_over_budget_cannot_start_and_nothing_is_created(client, canvas, session, redis):
    launch(client, canvas, canvas.user("student", 9))
    ensure_policies(session)
    token = tool_token(launch(client, canvas, canvas.user("student")))
    from classroom.models import Person

    person = session.scalar(select(Person).where(Person.sub == "student-1"))
    course_id = session.scalar(select(CoursePolicy.course_id))
    from datetime import date

    session.add(
        SpendDaily(
            course_id=course_id,
            person_id=person.id,
            day=date(2024, 10, 1),
            compute=Decimal(24),
            storage=Decimal(0),
            running_seconds=Decimal(0),
        )
    )
    session.commit()
    resp = client.get("/app/workspace", query_string={"t": token})
    assert resp.status_code == 403 and b"budget for this course is used up" in resp.data
    assert count_rows(session.get_bind(), "workspaces") == 0
    assert not list(redis.scan_iter("rq:job:provision_workspace-*"))


def test_course_not_set_up_refuses_students(client, canvas, session):
    token = tool_token(launch(client, canvas, canvas.user("student")))
    resp = client.get("/app/workspace", query_string={"t": token})
    assert resp.status_code == 403 and b"has not finished setting up" in resp.data
    assert count_rows(session.get_bind(), "workspaces") == 0


def test_request_approve_then_confirm_with_projection(client, canvas, session):
    teacher = tool_token(launch(client, canvas, canvas.user("instructor")))
    ensure_policies(session)
    student = tool_token(launch(client, canvas, canvas.user("student"), **_link("ml-final-project")))
    blocked = client.get("/app/workspace", query_string={"t": student})
    assert blocked.status_code == 200 and b"needs your instructor" in blocked.data  # askable: no refusal
    asking = blocked.get_data(as_text=True)
    assert "ML final-project workspace: available on request" in asking and "Launch blocked" not in asking
    assert "in about 10.7 days if left running 24/7" in asking  # $24 at $2.25 a day (IPv4 included)
    short = client.post(
        "/app/requests/ml-final-project", data={**hidden_fields(blocked.get_data(as_text=True)), "reason": "pls"}
    )
    assert short.status_code == 400 and count_rows(session.get_bind(), "template_requests") == 0
    sent = client.post(
        "/app/requests/ml-final-project",
        data={**hidden_fields(blocked.get_data(as_text=True)), "reason": "Training my final project model"},
    )
    assert sent.status_code == 303
    assert session.scalar(select(func.count(Notification.id))) == 1  # the instructor is told
    told = session.scalar(select(OutboxEmail))
    assert "ML final-project workspace" in told.subject and "ml-final-project" not in told.subject + told.body
    assert "Emily Chen" in told.body and "$0.00 spent of $24.00" in told.body and "10.7 days" in told.body
    pending = client.get("/app/workspace", query_string={"t": student})
    assert pending.status_code == 200 and b"waiting for your instructor" in pending.data
    listing = client.get("/app/requests", query_string={"t": teacher}).get_data(as_text=True)
    assert "ML final-project workspace" in listing and "ml-final-project</td>" not in listing
    assert "Emily Chen" in listing and "$0.00 spent of $24.00" in listing and "10.7 days" in listing
    assert "would use the rest of the budget in about 10.7 days" in listing  # the instructor reads it: no "your"
    request_id = session.scalar(select(TemplateRequest.id))
    approved = client.post(f"/app/requests/{request_id}/approve", data=hidden_fields(listing))
    assert approved.status_code == 303
    after = client.get(approved.headers["Location"]).get_data(as_text=True)
    assert "Approved. The student is told." in after and "decided" in after
    assert session.scalar(select(func.count(Notification.id))) == 2  # and the student
    answer = session.scalar(select(Notification).order_by(Notification.id.desc()))
    assert "ML final-project workspace was approved" in answer.subject and "ml-final-project" not in answer.body
    confirm = client.get("/app/workspace", query_string={"t": student})
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Start my workspace" in html
    assert "would use the rest of the budget in about 10.7 days" in html  # $24 / $2.25 a day
    assert count_rows(session.get_bind(), "workspaces") == 0  # nothing until the student confirms
    assert client.post("/app/workspace", data=hidden_fields(html)).status_code == 303
    assert count_rows(session.get_bind(), "workspaces") == 1


def test_students_cannot_reach_the_wizard_or_decide_requests(app, client, canvas, session):
    from lti_app.auth import csrf_token

    token = tool_token(launch(client, canvas, canvas.user("student")))
    with app.app_context():
        form = {"t": token, "csrf_token": csrf_token(token), **FORM}
    assert client.get("/app/setup", query_string={"t": token}).status_code == 403
    assert client.post("/app/setup", data=form).status_code == 403
    assert count_rows(session.get_bind(), "course_policies") == 0


def test_a_past_last_day_is_warned_about_and_saved_only_when_confirmed(client, canvas, session, redis):
    from lms_sync.progress import mark_queued

    resp = launch(client, canvas, canvas.user("instructor"))
    course_id = session.scalar(select(Course.id))
    mark_queued(redis, course_id, full=False)  # the launch's roster sync has not run yet
    page = client.get("/app/setup", query_string={"t": tool_token(resp)}).get_data(as_text=True)
    assert "Syncing the roster with the LMS" in page and "staff_step.js" in page
    past = {**hidden_fields(page), **FORM, "term_start": "2024-08-26", "term_end": "2024-12-13"}
    warned = client.post("/app/setup", data=past)
    html = warned.get_data(as_text=True)
    assert warned.status_code == 400 and "is already past: saving closes the course at once" in html
    assert "Yes, close the course now" in html and count_rows(session.get_bind(), "course_policies") == 0
    saved = client.post("/app/setup", data={**hidden_fields(html), **past, "confirm_past": "on"})
    assert saved.status_code == 303 and count_rows(session.get_bind(), "course_policies") == 1
