"""The minute's sweep on PostgreSQL: stops at the cap, at the daily cap and when idle; alerts once; emails."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from classroom.mail import SmtpMailer
from classroom.models import AlertSent, AuditEvent, Notification, OutboxEmail, SpendDaily, Workspace
from classroom.notify import send_outbox
from classroom.services.enforcement import run_sweep
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person

NOW = datetime(2024, 11, 5, 18, 0, tzinfo=UTC)
PRICES = load_prices().region("us-east-1")


@pytest.fixture
def course(session):  # type: ignore[no-untyped-def]
    c = make_course(session)
    make_policy(session, c)
    return c


def _spend(session, course, person, amount: str, day: date = date(2024, 11, 1)) -> None:  # type: ignore[no-untyped-def]
    session.add(
        SpendDaily(
            course_id=course.id,
            person_id=person.id,
            day=day,
            compute=Decimal(amount),
            storage=Decimal(0),
            running_seconds=Decimal(0),
        )
    )


def test_sweep_stops_at_the_cap_and_when_idle_and_alerts_once(session, course):
    emily, david, sophie = (
        make_person(session, course, name=n) for n in ("Emily Chen", "David Kim", "Sophie Martinez")
    )
    instructor = make_person(session, course, name="Jennifer Martinez", level="owner")
    _spend(session, course, emily, "23.999")  # one more minute reaches the cap
    _spend(session, course, david, "3")
    ws_e = make_running(session, course.id, emily.id, NOW - timedelta(minutes=1))
    ws_d = make_running(session, course.id, david.id, NOW - timedelta(hours=5), last_active=NOW - timedelta(hours=5))
    ws_s = make_running(session, course.id, sophie.id, NOW - timedelta(minutes=30))
    session.commit()
    result = run_sweep(session, NOW, PRICES)
    session.commit()
    assert sorted(result.stopped) == sorted([ws_e.id, ws_d.id])
    states = {w.id: (w.state, w.stop_mode) for w in session.scalars(select(Workspace))}
    assert states[ws_e.id] == (WorkspaceState.STOPPING, "hibernate") and states[ws_s.id][0] is WorkspaceState.RUNNING
    assert {j.workspace_id for j in result.jobs} == {ws_e.id, ws_d.id}
    audit = session.scalars(select(AuditEvent.details).where(AuditEvent.action == "workspace.enforced_stop")).all()
    assert sorted(d["code"] for d in audit) == ["budget", "idle"]
    kinds = sorted(session.scalars(select(AlertSent.kind)))
    assert kinds == ["anomaly-median", "budget-100", "budget-50", "budget-75", "budget-90"]
    assert session.scalar(select(func.count(Notification.id)).where(Notification.person_id == emily.id)) == 4
    assert session.scalar(select(func.count(Notification.id)).where(Notification.person_id == instructor.id)) == 1
    again = run_sweep(session, NOW + timedelta(seconds=1), PRICES)
    session.commit()
    assert again.stopped == [] and again.alerts == []
    assert session.scalar(select(func.count(AlertSent.id))) == 5


def test_daily_cap_stops_in_the_course_time_zone(session):
    course = make_course(session, time_zone="America/Los_Angeles")
    make_policy(session, course, max_daily_cost=Decimal(2))
    emily = make_person(session, course)
    _spend(session, course, emily, "2", day=date(2024, 11, 5))  # 10:00 in Los Angeles on Nov 5
    ws = make_running(session, course.id, emily.id, NOW - timedelta(minutes=5))
    session.commit()
    assert run_sweep(session, NOW, PRICES).stopped == [ws.id]


def test_a_course_without_policy_stops_running_workspaces(session):
    course = make_course(session)
    emily = make_person(session, course)
    ws = make_running(session, course.id, emily.id, NOW - timedelta(minutes=5))
    session.commit()
    assert run_sweep(session, NOW, PRICES).stopped == [ws.id]


def test_alert_emails_reach_a_real_smtp_server(session, course, settings):
    from aiosmtpd.controller import Controller

    received: list[object] = []

    class Handler:
        async def handle_DATA(self, server, sess, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
            received.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        emily = make_person(session, course)
        _spend(session, course, emily, "12.5")
        session.commit()
        run_sweep(session, NOW, PRICES)
        session.commit()
        mailer = SmtpMailer(settings.with_(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"))
        assert send_outbox(session, mailer) == 1
        session.commit()
        assert send_outbox(session, mailer) == 0  # sent once
    finally:
        controller.stop()
    (envelope,) = received
    assert envelope.rcpt_tos == [emily.email]  # type: ignore[attr-defined]
    from email import message_from_bytes, policy

    message = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[attr-defined]
    assert "You have used 50% of your workspace budget" in message["Subject"]
    assert "$12.50 of your $24.00 budget" in message.get_content()
    assert session.scalar(select(OutboxEmail.sent_at)) is not None
