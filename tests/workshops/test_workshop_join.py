"""Workshop mode (issue 20 item 7) through the web: the organiser makes a workshop in the LMS course, 30 walk-ins
join at the public page with the code and get a workspace each; wrong codes, a full workshop, a burst of 200
attempts and a forged form are refused with nothing written."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from classroom.jobs.queue import get_queue
from classroom.models import (
    AuditEvent,
    BudgetGrant,
    CoursePolicy,
    Enrollment,
    Person,
    Workshop,
    WorkshopParticipant,
    Workspace,
)
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from tests.conftest import count_rows
from tests.workshops.support import create_workshop, join, owner_token


def _provisions(redis) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for job_id in get_queue(redis).job_ids if job_id.startswith("provision_workspace-"))


def _counts(engine):  # type: ignore[no-untyped-def]
    return {t: count_rows(engine, t) for t in ("people", "enrollments", "workshop_participants", "workspaces")}


def test_thirty_walk_ins_each_get_a_workspace_within_the_workshop_policy(app, client, canvas, session, engine, redis):
    token = owner_token(client, canvas, session)
    status, code, resp = create_workshop(client, token)
    assert status == 201 and len(code.replace("-", "")) * 5 >= 80, resp.data[:500]
    assert b"shown only once" in resp.data
    workshop = session.scalar(select(Workshop))
    assert code not in str(workshop.code_hash)  # only the hash is kept
    policy = session.get(CoursePolicy, workshop.course_id)
    assert policy.budget_per_student == Decimal(5) and policy.total_budget == Decimal(150)  # $150 / 30
    assert policy.templates == {"ml-cpu-student": "approved"} and policy.expected_students == 30
    for n in range(30):
        resp = join(app, code.lower().replace("-", " "), f"Walk-in {n}")  # typed loosely: case and spaces
        assert resp.status_code == 303 and "/workshop/me?p=" in resp.headers["Location"], resp.data[:400]
    session.expire_all()
    assert session.scalar(select(func.count(WorkshopParticipant.id))) == 30
    states = session.scalars(select(Workspace.state).where(Workspace.course_id == workshop.course_id)).all()
    assert states == [WorkspaceState.REQUESTED] * 30
    assert _provisions(redis) == 30  # one provision job each, released after the commit
    levels = session.scalars(select(Enrollment.level).where(Enrollment.course_id == workshop.course_id)).all()
    assert sorted(levels) == sorted([StaffLevel.OWNER] + [StaffLevel.STUDENT] * 30)
    joined = session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "workshop.joined"))
    assert joined == 30
    page = client.get(f"/app/workshops/{workshop.id}", query_string={"t": token})
    assert page.status_code == 200 and b"30 of 30" in page.data and b"Walk-in 29" in page.data


def test_participant_link_opens_their_workspace_page_with_a_tool_token(app, client, canvas, session):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token)
    resp = join(app, code, "Ada")
    walk_in = app.test_client()
    me = walk_in.get(resp.headers["Location"])
    assert me.status_code == 200 and b"Welcome, Ada" in me.data
    link = me.get_data(as_text=True).split('href="/app/workspaces?t=')[1].split('"')[0]
    home = walk_in.get("/app/workspaces", query_string={"t": link})
    assert home.status_code == 200 and b"Queued" in home.data
    forged = walk_in.get("/workshop/me", query_string={"p": "x" + resp.headers["Location"].split("p=")[1]})
    assert forged.status_code == 403


def test_wrong_code_and_forged_form_are_refused_with_nothing_written(app, client, canvas, session, engine, redis):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token)
    before = _counts(engine)
    wrong = join(app, "AAAA-BBBB-CCCC-DDDD-EE", "Mallory")
    assert wrong.status_code == 403 and b"not recognised" in wrong.data
    no_csrf = app.test_client().post("/workshop/join", data={"code": code, "display_name": "Mallory"})
    assert no_csrf.status_code == 403
    no_name = join(app, code, "  \u200b ")
    assert no_name.status_code == 400 and b"display name" in no_name.data
    assert _counts(engine) == before and _provisions(redis) == 0


def test_full_workshop_refuses_the_next_walk_in_with_nothing_written(app, client, canvas, session, engine, redis):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, max_participants="2", budget="10")
    assert join(app, code, "One").status_code == 303
    assert join(app, code, "Two", extension="on").status_code == 303  # none offered: joined without one
    assert count_rows(engine, "budget_grants") == 0
    before = _counts(engine)
    full = join(app, code, "Three")
    assert full.status_code == 409 and b"full (2 participants)" in full.data
    assert _counts(engine) == before and _provisions(redis) == 2


def test_burst_of_200_join_attempts_is_rate_limited_and_never_passes_the_cap(app, client, canvas, session, engine):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, max_participants="5", budget="25")
    walk_in = app.test_client()
    csrf = walk_in.get("/workshop/join").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answers = [
        walk_in.post("/workshop/join", data={"csrf_token": csrf, "code": code, "display_name": f"Bot {n}"}).status_code
        for n in range(200)
    ]
    assert answers.count(303) == 5 and answers.count(409) == 55 and answers.count(429) == 140
    assert count_rows(engine, "workshop_participants") == 5 and count_rows(engine, "workspaces") == 5
    other_ip = join(app, code, "Late", ip="10.0.0.7")  # another client is not limited by the first one
    assert other_ip.status_code == 409


def test_extension_at_join_takes_from_the_allowance_until_it_is_used_up(app, client, canvas, session, engine):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(
        client, token, extension_days="7", extension_daily_price="1", extension_allowance="14"
    )  # fmt: skip  two extensions of $7
    assert join(app, code, "Keen 1", extension="on").status_code == 303
    assert join(app, code, "Keen 2", extension="on").status_code == 303
    before = _counts(engine)
    third = join(app, code, "Keen 3", extension="on")
    assert third.status_code == 409 and b"join without it" in third.data and _counts(engine) == before
    grants = session.scalars(select(BudgetGrant.amount).where(BudgetGrant.kind == "extension")).all()
    assert grants == [Decimal(7), Decimal(7)]
    names = session.scalars(select(Person.name).join(WorkshopParticipant, WorkshopParticipant.person_id == Person.id)
                            .where(WorkshopParticipant.extension.is_(True))).all()  # fmt: skip
    assert sorted(names) == ["Keen 1", "Keen 2"]
