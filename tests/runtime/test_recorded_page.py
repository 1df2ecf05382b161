"""A student's "What is recorded" page: what the course collects, and only their own events."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from classroom.models import ActivityEvent, Person
from tests.support.budget import make_running
from tests.support.lti import launch, tool_token


def _student_token(client, canvas, n):  # type: ignore[no-untyped-def]
    resp = launch(client, canvas, canvas.user("student", n))
    return tool_token(resp)


def test_recorded_page_shows_the_setting_and_only_my_events(client, canvas, session):
    emily_t, david_t = _student_token(client, canvas, 1), _student_token(client, canvas, 2)
    emily, david = session.scalars(select(Person).order_by(Person.id)).all()[-2:]
    course_id = _course_id(session)
    now = datetime.now(UTC)
    for person, path in ((emily, "emily_secret_hw.py"), (david, "david_notes.py")):
        ws = make_running(session, course_id, person.id, now, link=f"l{person.id}")
        session.flush()
        session.add(ActivityEvent(workspace_id=ws.id, event_id=f"ev{person.id}xxxxxx", kind="file_changed", at=now,
                                  details={"path": path}, received_at=now))  # fmt: skip
    session.commit()
    page = client.get("/app/recorded", query_string={"t": emily_t})
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "emily_secret_hw.py" in body and "david_notes.py" not in body
    assert "Activity, in this course: not collected" in body and "Never the content" in body
    assert "Downloads with <code>curl</code>" in body and "Not recorded: the commands you type" in body
    assert "david_notes.py" in client.get("/app/recorded", query_string={"t": david_t}).get_data(as_text=True)
    assert client.get("/app/recorded").status_code in (401, 403)


def test_recorded_page_names_every_wrapped_tool_and_what_old_scp_records(client, canvas, session):
    """The wrappers' list is the code's (cwc_toolwrap.TOOLS, scp included), and old-protocol scp says its size."""
    from provisioning.agent.cwc_toolwrap import TOOLS

    body = " ".join(client.get("/app/recorded", query_string={"t": _student_token(client, canvas, 1)})
                    .get_data(as_text=True).split())  # fmt: skip
    listed = ", ".join(f"<code>{t}</code>" for t in TOOLS[:-1]) + f" and <code>{TOOLS[-1]}</code>"
    assert "scp" in TOOLS and f"in your workspace, {listed} are small wrappers" in body
    assert "the path only" not in body
    assert "on a cloud workspace, each file's path, direction and size" in body and "without the size" in body


def _course_id(session):  # type: ignore[no-untyped-def]
    from classroom.models import Course

    return session.scalar(select(Course.id))
