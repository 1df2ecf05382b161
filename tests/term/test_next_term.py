"""Next term over real signed launches: a Canvas-shaped launch carrying `$Context.id.history` offers the copy of
the course it came from; the duplicate copies the set-up, assignment columns, materials (S3 through the port) and
staff levels, records the lineage; refusals (a course already set up, a course not taught, other roles) write
nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from classroom.models import AuditEvent, Course, CoursePolicy, Enrollment, LmsLineItem, Person
from classroom.roles import StaffLevel
from classroom.services.next_term import history_ids
from lti_app.auth import csrf_token
from tests.conftest import count_rows
from tests.support.apps import app_on_simulated_aws
from tests.support.budget import ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
OLD, NEW = "cs229-fall2024", "cs229-winter2025"
TABLES = ("course_policies", "enrollments", "lms_line_items", "audit_events")
TERM = {"term_start": "2025-01-06", "term_end": "2025-03-21"}


@pytest.fixture
def app(settings, backend):  # type: ignore[no-untyped-def]
    yield from app_on_simulated_aws(settings, backend)


def _copied_launch(client, canvas, user, history: str = OLD):  # type: ignore[no-untyped-def]
    """A launch into next term's course, made by Canvas's course copy (the history names the old course)."""
    custom = {"canvas_course_id": "12399", "context_history": history}
    return launch(client, canvas, user, context_id=NEW, **{LTI + "custom": custom})


def _fall(client, canvas, session, backend):  # type: ignore[no-untyped-def]
    """Fall 2024, set up by Dr. Martinez: Alex is head TA, HW1's column, a dataset in the materials."""
    owner = tool_token(launch(client, canvas, canvas.user("instructor")))
    tool_token(launch(client, canvas, canvas.user("instructor", 2)))
    ensure_policies(session)
    fall = session.scalar(select(Course).where(Course.context_id == OLD))
    session.get(CoursePolicy, fall.id).budget_per_student = Decimal("75")
    alex = session.scalar(select(Enrollment).join(Person).where(Person.sub == "instructor-2"))
    alex.level = StaffLevel.HEAD_TA
    session.add(LmsLineItem(course_id=fall.id, label="HW1: Linear Regression", score_maximum=Decimal(100),
                            url="https://canvas/li/1", resource_link_id="rl-1", tag="hw1"))  # fmt: skip
    session.commit()
    backend.upload_material(f"c{fall.id}", "datasets/train.csv", b"x,y\n1,2\n")
    return owner, fall


def test_a_canvas_copy_offers_the_old_course_and_the_duplicate_copies_its_set_up(client, canvas, session, backend):
    _owner, fall = _fall(client, canvas, session, backend)
    first = _copied_launch(client, canvas, canvas.user("instructor"))
    assert "/app/setup" in first.headers["Location"]  # no set-up yet: the wizard, with the offer
    token = tool_token(first)
    winter = session.scalar(select(Course).where(Course.context_id == NEW))
    assert winter.context_history == OLD
    wizard = client.get("/app/setup", query_string={"t": token}).get_data(as_text=True)
    assert 'id="next-term-offer"' in wizard and "Machine Learning" in wizard
    offer = client.get("/app/next-term", query_string={"t": token})
    assert offer.status_code == 200 and 'id="suggested"' in offer.get_data(as_text=True)
    form = {**hidden_fields(offer.get_data(as_text=True)), "source_id": str(fall.id), "staff": "on", **TERM}
    resp = client.post("/app/next-term", data=form)
    assert resp.status_code == 303, resp.data[:400]
    session.expire_all()
    policy = session.get(CoursePolicy, winter.id)
    assert policy is not None and policy.budget_per_student == Decimal("75") and policy.closed_at is None
    assert policy.templates == session.get(CoursePolicy, fall.id).templates
    winter = session.get(Course, winter.id)
    assert winter.previous_course_id == fall.id and str(winter.term_end) == "2025-03-21"
    (column,) = session.scalars(select(LmsLineItem).where(LmsLineItem.course_id == winter.id)).all()
    assert (column.label, column.tag, column.url, column.resource_link_id) == ("HW1: Linear Regression", "hw1", "", "")
    alex = session.scalar(
        select(Enrollment).join(Person).where(Person.sub == "instructor-2", Enrollment.course_id == winter.id)
    )
    assert alex.level is StaffLevel.HEAD_TA and alex.level_pinned
    assert dict(backend.list_materials(f"c{winter.id}")) == {"datasets/train.csv": 8}
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.course_id == winter.id)))
    assert {"course.duplicated", "course.materials_copied"} <= actions

    # a second duplicate is refused with a message unless the instructor asks to overwrite
    page = client.get("/app/next-term", query_string={"t": token}).get_data(as_text=True)
    before = tuple(count_rows(session.get_bind(), t) for t in TABLES)
    again = client.post("/app/next-term", data={**hidden_fields(page), "source_id": str(fall.id), **TERM})
    assert again.status_code == 422 and b"already has a set-up" in again.data
    assert tuple(count_rows(session.get_bind(), t) for t in TABLES) == before
    replaced = client.post("/app/next-term", data={**hidden_fields(page), "source_id": str(fall.id),
                                                   "overwrite": "on", **TERM})  # fmt: skip
    assert replaced.status_code == 303


def test_without_a_history_the_instructor_picks_a_course_they_teach(client, canvas, session, backend):
    _owner, fall = _fall(client, canvas, session, backend)
    token = tool_token(_copied_launch(client, canvas, canvas.user("instructor"), history="$Context.id.history"))
    assert session.scalar(select(Course.context_history).where(Course.context_id == NEW)) == ""
    page = client.get("/app/next-term", query_string={"t": token}).get_data(as_text=True)
    assert 'id="suggested"' not in page and f'<option value="{fall.id}"' in page


def test_refusals_write_nothing(client, canvas, session, backend, engine):
    _owner, fall = _fall(client, canvas, session, backend)
    # an instructor who does not teach Fall 2024 cannot copy it (another course's set-up stays out of reach)
    stranger = tool_token(_copied_launch(client, canvas, canvas.user("instructor", 3)))
    before = tuple(count_rows(engine, t) for t in TABLES)
    got = client.get("/app/next-term", query_string={"t": stranger})
    assert got.status_code == 200, got.data[:800]
    page = got.get_data(as_text=True)
    assert f'<option value="{fall.id}"' not in page
    with client.application.app_context():
        signed = {"t": stranger, "csrf_token": csrf_token(stranger)}  # no form is shown: posted as a forger would
    resp = client.post("/app/next-term", data={**signed, "source_id": str(fall.id), **TERM})
    assert resp.status_code == 422 and b"courses you teach" in resp.data
    for bad in ({"term_start": "soon"}, {"term_end": "2024-01-01"}, {"source_id": "99999999999999999999"}):
        form = {**signed, "source_id": str(fall.id), **TERM, **bad}
        bad_resp = client.post("/app/next-term", data=form)
        assert bad_resp.status_code == 422, (bad, bad_resp.data[:600])
    assert tuple(count_rows(engine, t) for t in TABLES) == before


@pytest.mark.parametrize("who", ["student", "ta", "anonymous"])
def test_only_instructors_reach_the_page(who, client, canvas, session, backend, engine):
    _owner, fall = _fall(client, canvas, session, backend)
    _copied_launch(client, canvas, canvas.user("instructor"))  # the new course's owner
    token = ""
    if who == "student":
        token = tool_token(_copied_launch(client, canvas, canvas.user("student")))
    elif who == "ta":
        token = tool_token(_copied_launch(client, canvas, canvas.user("instructor", 2)))  # a second one: a TA
    before = tuple(count_rows(engine, t) for t in TABLES)
    assert client.get("/app/next-term", query_string={"t": token}).status_code in (401, 403)
    with client.application.app_context():
        csrf = csrf_token(token) if token else ""
    data = {"t": token, "csrf_token": csrf, "source_id": str(fall.id), **TERM}
    assert client.post("/app/next-term", data=data).status_code in (401, 403)
    assert tuple(count_rows(engine, t) for t in TABLES) == before


def test_history_values():
    assert history_ids("cs229-fall2024, cs229-spring2024") == ["cs229-fall2024", "cs229-spring2024"]
    assert history_ids("$Context.id.history") == [] and history_ids("") == []


def test_two_copies_at_once_make_one_and_refuse_the_other(session, engine):
    import time
    from concurrent.futures import ThreadPoolExecutor
    from datetime import date
    from threading import Barrier

    from classroom.db import make_session_factory
    from classroom.services.next_term import DuplicateError, duplicate_course
    from tests.support.budget import make_policy
    from tests.support.factories import make_course, make_person

    fall = make_course(session, context_id=OLD)
    make_policy(session, fall)
    owner = make_person(session, fall, name="Jennifer Martinez", level=StaffLevel.OWNER)
    winter = make_course(session, context_id=NEW, platform=fall.platform)
    session.add(Enrollment(course_id=winter.id, person_id=owner.id, lti_roles=[], level=StaffLevel.OWNER))
    session.commit()
    sessions, gate = make_session_factory(engine), Barrier(2)

    def copy(_: int) -> str:
        with sessions() as s:
            gate.wait()
            try:
                duplicate_course(s, fall.id, s.get(Course, winter.id), actor_id=owner.id,
                                 term=(date(2025, 1, 6), date(2025, 3, 21)), staff=False, overwrite=False)  # fmt: skip
                time.sleep(0.5)  # hold the transaction open: the other copy runs meanwhile
                s.commit()
                return "copied"
            except DuplicateError:
                s.rollback()
                return "refused"

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(copy, range(2))) == ["copied", "refused"]
    assert session.scalar(select(func.count()).where(AuditEvent.action == "course.duplicated")) == 1
