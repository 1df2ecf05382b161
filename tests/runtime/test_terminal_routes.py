"""The terminal's routes in the Flask app, for every role: who gets a ticket for what, sharing, CSRF, audit.

Real signed launches over HTTP; tickets land in real Redis. A refusal asserts its status and that no ticket and no
audit event were written.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from classroom.db import utcnow
from classroom.models import AuditEvent, Course, Enrollment, Person
from classroom.roles import StaffLevel
from classroom.services.terminal import Mode, redeem_ticket, shared
from classroom.workspaces.archive_rules import LOCKED_FOR_ARCHIVE
from classroom.workspaces.lifecycle import WorkspaceState
from lti_app.auth import csrf_token
from tests.conftest import count_rows
from tests.support.budget import make_running
from tests.support.lti import launch, tool_token


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """A gateway and a local runtime configured (nothing listens: these tests stop at the ticket)."""
    return replace(settings, gateway_port=8765, runtime_ssh_port=2222, aws_endpoint_url="http://127.0.0.1:1")


def _level(session, sub, level):  # type: ignore[no-untyped-def]
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == sub))
    enrollment.level = level
    session.commit()


@pytest.fixture
def people(client, canvas, session):  # type: ignore[no-untyped-def]
    tokens = {
        "emily": tool_token(launch(client, canvas, canvas.user("student", 1))),
        "david": tool_token(launch(client, canvas, canvas.user("student", 2))),
        "priya": tool_token(launch(client, canvas, canvas.user("ta", 1))),
        "alex": tool_token(launch(client, canvas, canvas.user("ta", 2))),
        "martinez": tool_token(launch(client, canvas, canvas.user("instructor", 1))),
        "stranger": tool_token(launch(client, canvas, canvas.user("instructor", 2), context_id="other-course")),
    }
    _level(session, "ta-1", StaffLevel.TA)
    _level(session, "ta-2", StaffLevel.HEAD_TA)
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    ws = make_running(session, course.id, emily.id, utcnow())
    session.commit()
    return tokens, ws


def _post(app, client, path, token, **form):  # type: ignore[no-untyped-def]
    with app.app_context():
        csrf = csrf_token(token)
    return client.post(path, data={"t": token, "csrf_token": csrf, **form})


def _audits(session, like):  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like(like)))


def _written(session, redis) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """All a ticket request can write: tickets, shares and debug credentials in Redis, audit events and debug
    sessions (read on connections of their own: what the request committed)."""
    engine = session.get_bind()
    counts = {table: count_rows(engine, table) for table in ("audit_events", "debug_sessions")}
    return {"redis": sorted(redis.scan_iter("cwc:term:*")), **counts}


def test_only_the_owner_gets_a_shell_ticket(app, client, session, redis, people):  # type: ignore[no-untyped-def]
    tokens, ws = people
    path = f"/app/workspaces/{ws.id}/terminal/ticket"
    resp = _post(app, client, path, tokens["emily"], cols="120", rows="40")
    assert resp.status_code == 200 and resp.json["mode"] == "shell"
    query = parse_qs(urlsplit(resp.json["url"]).query)
    assert resp.json["url"].startswith("ws://127.0.0.1:8765/terminal?") and query["cols"] == ["120"]
    ticket = redeem_ticket(redis, query["ticket"][0])
    assert ticket.mode is Mode.SHELL and ticket.workspace_id == ws.id and not ticket.staff
    assert redeem_ticket(redis, query["ticket"][0]) is None  # once
    before = _written(session, redis)
    assert _post(app, client, path, tokens["david"]).status_code == 404  # another student: not even "it exists"
    assert _post(app, client, path, tokens["stranger"]).status_code == 404  # another course
    assert client.post(path, data={"t": tokens["emily"]}).status_code == 403  # no CSRF token
    assert client.post(path).status_code == 401  # anonymous
    for staff in ("priya", "alex", "martinez"):  # staff watch a shared terminal only, never get a shell
        assert _post(app, client, path, tokens[staff]).status_code == 409
    assert _written(session, redis) == before and not before["redis"] and _audits(session, "terminal.%") == 0


def test_a_stopped_workspace_gets_no_ticket_and_the_page_says_why(app, client, session, redis, people):  # type: ignore[no-untyped-def]
    tokens, ws = people
    ws.state = WorkspaceState.STOPPED
    session.commit()
    before = _written(session, redis)
    resp = _post(app, client, f"/app/workspaces/{ws.id}/terminal/ticket", tokens["emily"])
    assert resp.status_code == 409 and "stopped" in resp.json["message"]
    assert _written(session, redis) == before
    page = client.get(f"/app/workspaces/{ws.id}/terminal", query_string={"t": tokens["emily"]})
    assert page.status_code == 200 and "Start it from your workspace page" in page.get_data(as_text=True)
    assert redis.keys("cwc:term:ticket:*") == []


@pytest.mark.parametrize("lock", ["locked_out_at", "archiving_until"])
def test_a_workspace_locked_for_its_archive_gets_no_ticket_and_the_page_says_why(app, client, session, redis, people,
                                                                                 lock):  # type: ignore[no-untyped-def]  # fmt: skip
    """At term end the student is locked out before the final archive (or it runs for its archive only): it is
    running, but a shell opened now could change the home after the tar."""
    from datetime import timedelta

    tokens, ws = people
    setattr(ws, lock, utcnow() if lock == "locked_out_at" else utcnow() + timedelta(minutes=30))
    session.commit()
    assert ws.state is WorkspaceState.RUNNING
    before = _written(session, redis)
    resp = _post(app, client, f"/app/workspaces/{ws.id}/terminal/ticket", tokens["emily"])
    assert resp.status_code == 409
    assert resp.json["message"] == LOCKED_FOR_ARCHIVE and "archived for the end of the term" in LOCKED_FOR_ARCHIVE
    assert _written(session, redis) == before and redis.keys("cwc:term:ticket:*") == []
    page = client.get(f"/app/workspaces/{ws.id}/terminal", query_string={"t": tokens["emily"]})
    assert page.status_code == 200 and "it can no longer be opened" in page.get_data(as_text=True)


def test_a_workspace_stopped_over_budget_says_so_on_the_page_and_the_ticket(app, client, session, redis, people):  # type: ignore[no-untyped-def]
    from classroom.budget.enforcement import BUDGET_USED_UP, DAILY_CAP_REACHED, Plan, Stop
    from classroom.services.enforcement import SweepResult, _apply_stops

    tokens, ws = people
    plan = Plan(stops=[Stop(ws.id, ws.course_id, ws.person_id, "budget", BUDGET_USED_UP)])
    _apply_stops(session, plan, utcnow(), SweepResult())  # the sweep's own statement: state and event
    session.commit()
    before = _written(session, redis)
    resp = _post(app, client, f"/app/workspaces/{ws.id}/terminal/ticket", tokens["emily"])
    assert resp.status_code == 409
    assert resp.json["message"] == ("Your workspace was stopped because your budget for this course is used up. "
                                    "Your files are kept. Ask your instructor if you need more.")  # fmt: skip
    assert _written(session, redis) == before and redis.keys("cwc:term:ticket:*") == []
    page = client.get(f"/app/workspaces/{ws.id}/terminal", query_string={"t": tokens["emily"]}).get_data(as_text=True)
    assert "your budget for this course is used up" in page

    session.refresh(ws)  # a later stop by the student herself: the budget message no longer applies
    from classroom.models import WorkspaceEvent

    session.add(WorkspaceEvent(workspace_id=ws.id, from_state=WorkspaceState.RUNNING, to_state=WorkspaceState.STOPPING,
                               actor="student", reason="stopped by the student"))  # fmt: skip
    session.commit()
    resp = _post(app, client, f"/app/workspaces/{ws.id}/terminal/ticket", tokens["emily"])
    assert resp.status_code == 409 and "budget" not in resp.json["message"]
    from provisioning.gateway.connect import not_running_message

    daily = not_running_message(WorkspaceState.HIBERNATED, DAILY_CAP_REACHED)
    assert "today's spending limit" in daily and "tomorrow" in daily
    assert not_running_message(WorkspaceState.STOPPED, "idle for 30 minutes").startswith(
        "Your workspace was stopped (idle for 30 minutes)."
    )


def test_sharing_lets_every_staff_level_watch_audited_and_stopping_ends_it(app, client, session, redis, people):  # type: ignore[no-untyped-def]
    tokens, ws = people
    share = f"/app/workspaces/{ws.id}/terminal/share"
    before = _written(session, redis)
    for who in ("david", "priya", "alex", "martinez", "stranger"):
        assert _post(app, client, share, tokens[who], action="start").status_code == 404
    assert _post(app, client, share, tokens["emily"], action="maybe").status_code == 400
    assert shared(redis, ws.id) is None and _written(session, redis) == before
    assert _post(app, client, share, tokens["emily"], action="start").json == {"shared": True}
    listing = client.get("/app/terminals/shared", query_string={"t": tokens["priya"]})
    assert listing.status_code == 200 and "Emily Chen" in listing.get_data(as_text=True)
    assert client.get("/app/terminals/shared", query_string={"t": tokens["emily"]}).status_code == 403
    assert "Emily" not in client.get("/app/terminals/shared", query_string={"t": tokens["stranger"]}).get_data(
        as_text=True
    )
    ticket_path = f"/app/workspaces/{ws.id}/terminal/ticket"
    for staff in ("priya", "alex", "martinez"):  # read-only TAs too: watching never types
        resp = _post(app, client, ticket_path, tokens[staff])
        assert resp.status_code == 200 and resp.json["mode"] == "watch"
        ticket = redeem_ticket(redis, parse_qs(urlsplit(resp.json["url"]).query)["ticket"][0])
        assert ticket.mode is Mode.WATCH and ticket.staff and ticket.owner_person_id == ws.person_id
    before = _written(session, redis)
    assert _post(app, client, ticket_path, tokens["david"]).status_code == 404
    assert _written(session, redis) == before  # no ticket, no audit event
    assert _audits(session, "terminal.watch") == 3 and _audits(session, "terminal.share.start") == 1
    assert _post(app, client, share, tokens["emily"], action="stop").json == {"shared": False}
    before = _written(session, redis)
    assert _post(app, client, ticket_path, tokens["priya"]).status_code == 409
    assert _written(session, redis) == before
    assert _audits(session, "terminal.watch") == 3


def test_the_workspace_page_offers_the_terminal_only_when_it_can_open(app, client, session, people):  # type: ignore[no-untyped-def]
    tokens, ws = people
    home = client.get("/app/workspaces", query_string={"t": tokens["emily"]}).get_data(as_text=True)
    assert "Open terminal" in home
    ws.state = WorkspaceState.STOPPED
    session.commit()
    home = client.get("/app/workspaces", query_string={"t": tokens["emily"]}).get_data(as_text=True)
    assert "Open terminal" not in home


def test_a_debug_session_opens_in_the_browser_terminal_for_its_opener_only(app, client, session, redis, people):  # type: ignore[no-untyped-def]
    from classroom.models import DebugSession
    from classroom.services.terminal import debug_credentials

    tokens, ws = people
    ws.instance_id = "i-0123456789abcdef0"
    session.commit()
    form = {"ws": str(ws.id), "reason": "Sophie's training crashes", "mode": "view", "minutes": "30"}
    debug = f"/app/students/{ws.person_id}/debug/ssh"
    before = _written(session, redis)
    assert _post(app, client, debug, tokens["priya"], where="browser", **form).status_code == 403  # read-only TA
    assert _post(app, client, debug, tokens["alex"], where="browser", **{**form, "reason": ""}).status_code == 400
    assert session.scalar(select(func.count()).select_from(DebugSession)) == 0
    assert _written(session, redis) == before | {"audit_events": before["audit_events"] + 1}  # no key pair kept
    assert _audits(session, "staff.refused") == 1  # the one write: the read-only TA's refusal, audited
    resp = _post(app, client, debug, tokens["alex"], where="browser", **form)
    assert resp.status_code == 303 and "/terminal" in resp.headers["Location"]
    ds = session.scalar(select(DebugSession))
    assert debug_credentials(redis, ds.id) is not None  # the session's own key pair, never the student's
    page = client.get(f"/app/debug-sessions/{ds.id}/terminal", query_string={"t": tokens["alex"]})
    assert page.status_code == 200 and f"Debug session D{ds.id}" in page.get_data(as_text=True)
    ticket_path = f"/app/debug-sessions/{ds.id}/terminal/ticket"
    before = _written(session, redis)
    assert _post(app, client, ticket_path, tokens["martinez"]).status_code == 404  # not the opener
    assert _post(app, client, ticket_path, tokens["priya"]).status_code == 403
    assert _post(app, client, ticket_path, tokens["emily"]).status_code == 403
    assert _post(app, client, ticket_path, tokens["stranger"]).status_code == 404  # another course
    assert _written(session, redis) == before  # no ticket, no audit event, no debug session
    assert _audits(session, "terminal.debug.connect") == 0
    resp = _post(app, client, ticket_path, tokens["alex"])
    assert resp.status_code == 200 and resp.json["mode"] == "debug"
    ticket = redeem_ticket(redis, parse_qs(urlsplit(resp.json["url"]).query)["ticket"][0])
    assert ticket.mode is Mode.DEBUG and ticket.debug_session_id == ds.id and ticket.certificate
    assert _audits(session, "terminal.debug.connect") == 1
    assert _post(app, client, f"/app/debug-sessions/{ds.id}/end", tokens["alex"]).status_code == 303
    assert debug_credentials(redis, ds.id) is None
    before = _written(session, redis)
    assert _post(app, client, ticket_path, tokens["alex"]).status_code == 409
    assert _written(session, redis) == before
