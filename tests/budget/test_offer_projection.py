"""The student's home lists the course's other templates with what starting each would do to the budget: a new
workspace sets its disk aside first; a template the student already has a workspace of (one per template) would
start that one, so nothing new is set aside."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from classroom.models import Course, Person
from tests.support.budget import ensure_policies, make_running
from tests.support.lti import launch, tool_token


def _offer(html: str) -> str:
    """The other-templates section's paragraph for the final-project template."""
    section = html.split('id="offers-h"', 1)[1]
    return section.split("ML final-project workspace", 1)[1].split("</p>", 1)[0]


def test_an_offer_sets_a_new_disk_aside_but_not_one_the_student_already_has(client, canvas, session):
    course_link = {"https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "nav", "title": "Cloud"}}
    token = tool_token(launch(client, canvas, canvas.user("student", 1), **course_link))
    ensure_policies(session, templates={"ml-cpu-student": "approved", "ml-final-project": "approved"})
    course = session.scalar(select(Course))
    course.time_zone, course.term_end = "UTC", date.today() + timedelta(days=60)
    session.commit()
    fresh = _offer(client.get("/app/workspaces", query_string={"t": token}).get_data(as_text=True))
    assert "Its 50 GB disk sets aside $" in fresh, fresh
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    aside = make_running(session, course.id, emily.id, course.created_at, link="aside")
    aside.template_id, aside.instance_type, aside.volume_gb = "ml-final-project", "t3.large", 50
    aside.link_key = "template:ml-final-project#before-1"
    session.commit()  # set aside by a restore: its link would not find it, so a new disk is still set aside
    assert "sets aside $" in _offer(client.get("/app/workspaces", query_string={"t": token}).get_data(as_text=True))
    held = make_running(session, course.id, emily.id, course.created_at, link="held")
    held.template_id, held.instance_type, held.volume_gb = "ml-final-project", "t3.large", 50
    held.link_key = "template:ml-final-project"  # what the final project's link looks for
    session.commit()
    again = _offer(client.get("/app/workspaces", query_string={"t": token}).get_data(as_text=True))
    assert "sets aside" not in again and "if left running 24/7" in again, again
