"""Warnings 24 hours and 10 minutes before the term ends: in the tool (a banner on the student's pages), by email
(the outbox), in the SSH login banner (the agent's heartbeat answer, the local runtime), once per student per
threshold, with the student's budget figure and what happens to their files. Real PostgreSQL and Redis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from classroom.models import AlertSent, Course, Notification, OutboxEmail, SpendDaily
from classroom.roles import StaffLevel
from classroom.services.term_notices import CourseTerm, Fate, course_term, due_threshold, notice_text, time_left
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import load_prices
from provisioning.agent.cwc_agent import heartbeat, login_banner, write_banner
from provisioning.agent_service import Report, issue_agent_token, record_heartbeat
from provisioning.term_end import run_term_end, term_end_instant
from tests.support.budget import ensure_policies, make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.support.lti import launch, tool_token
from tests.support.statements import statements

PRICES = load_prices().region("us-east-1")
LOGIN_BANNER = login_banner(False, False)  # a course that collects nothing (the settings these tests use)
END = datetime(2024, 12, 14, 7, 59, 59, 999999, tzinfo=UTC)  # 13 December, 23:59:59 in Los Angeles


def _course(session):  # type: ignore[no-untyped-def]
    """CS 229: Emily with a stopped workspace and $22.80 spent, David with nothing, and their instructor."""
    course = make_course(
        session, time_zone="America/Los_Angeles", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13)
    )
    make_policy(session, course, archive_retention_days=180, disk_grace_days=14)
    owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    emily, david = make_person(session, course, name="Emily Chen"), make_person(session, course, name="David Kim")
    ws = make_running(session, course.id, emily.id, datetime(2024, 12, 1, tzinfo=UTC))
    ws.state = WorkspaceState.STOPPED
    session.add(SpendDaily(course_id=course.id, person_id=emily.id, day=date(2024, 12, 1), compute=Decimal("22.80"),
                           storage=Decimal(0), running_seconds=Decimal(3600)))  # fmt: skip
    session.commit()
    return course, owner, emily, david, ws


def test_each_threshold_warns_every_student_once_with_figures_and_files(session):
    course, owner, emily, david, _ = _course(session)
    assert term_end_instant(course).astimezone(UTC) == END
    assert run_term_end(session, END - timedelta(hours=25)).warned == 0
    assert run_term_end(session, END - timedelta(hours=23, minutes=58)).warned == 2
    session.commit()
    assert run_term_end(session, END - timedelta(hours=23)).warned == 0  # a retried or later pass: nothing again
    assert run_term_end(session, END - timedelta(minutes=9)).warned == 2
    session.commit()
    assert run_term_end(session, END - timedelta(minutes=8)).warned == 0
    session.commit()
    notes = session.scalars(select(Notification).order_by(Notification.id)).all()
    assert [n.person_id for n in notes] == [emily.id, david.id, emily.id, david.id]  # never the staff
    first, last = {n.person_id: n for n in notes[:2]}, {n.person_id: n for n in notes[2:]}
    assert first[emily.id].subject.endswith("The term ends in about 24 hours")
    assert last[emily.id].subject.endswith("The term ends in 9 minutes")
    body = first[emily.id].body
    assert "Friday 13 December 2024, 23:59 PST" in body and "$22.80 spent of $24.00, $1.20 left" in body
    assert f"courses/c{course.id}/archives/" in body and "kept until 12 June 2025" in body  # 14 Dec + 180 days
    assert "disk is deleted on 28 December 2024" in body
    assert "no workspace, so no files" in first[david.id].body and "$0.00 spent of $24.00" in first[david.id].body
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == 4  # each by email too
    kinds = session.scalars(select(AlertSent.kind).where(AlertSent.person_id == emily.id).order_by(AlertSent.id))
    assert list(kinds) == ["term-end-24h", "term-end-10min"]


def test_the_agents_heartbeat_answer_carries_the_term_notice(session):
    course, _, emily, _, ws = _course(session)
    ws.state = WorkspaceState.RUNNING
    token = issue_agent_token(ws)
    session.commit()
    report = Report(ws.id, 1, False, Decimal(5), 0)
    far = record_heartbeat(
        session, token, report, prices=PRICES, lease=timedelta(minutes=15), now=END - timedelta(days=3)
    )
    assert far.banner == "" and far.as_json()["banner"] == ""
    near = record_heartbeat(session, token, report, prices=PRICES, lease=timedelta(minutes=15),
                            now=END - timedelta(minutes=5))  # fmt: skip
    assert near.as_json()["banner"].startswith("The term ends in 5 minutes") and "$22.80 spent" in near.banner
    session.rollback()


def test_sshds_banner_never_carries_the_spend_only_the_motd_after_login_does(session, tmp_path):
    """sshd sends its Banner before authentication to anyone reaching port 22: the real heartbeat answer's notice
    (the student's spend) goes to the motd pam_motd shows after login, next to the staff messages."""
    course, _, emily, _, ws = _course(session)
    ws.state = WorkspaceState.RUNNING
    token = issue_agent_token(ws)
    session.commit()
    near = record_heartbeat(session, token, Report(ws.id, 1, False, Decimal(5), 0), prices=PRICES,
                            lease=timedelta(minutes=15), now=END - timedelta(minutes=5))  # fmt: skip
    session.rollback()
    answer = {**near.as_json(), "motd": "1 unread message from staff: Alex Thompson: your batch size\n"}
    assert "$22.80 spent" in answer["banner"]
    banner, motd = str(tmp_path / "cwc_banner"), str(tmp_path / "motd.d" / "cwc-messages")
    cfg = {"url": "http://tool/api/agent/heartbeat", "token": "t", "home": str(tmp_path), "user": "u", "motd": motd}
    heartbeat(cfg, _Keeper(), {}, 0, post=lambda *a: (200, answer), write_keys=lambda *a: None,
              write_login_banner=lambda **flags: write_banner(banner, **flags))  # fmt: skip
    assert Path(banner).read_text() == LOGIN_BANNER and "$" not in Path(banner).read_text()
    shown = Path(motd).read_text()
    assert shown.startswith("The term ends in 5 minutes") and "$22.80 spent of $24.00" in shown
    assert shown.endswith("1 unread message from staff: Alex Thompson: your batch size\n")  # neither clobbers


def test_the_course_term_is_one_statement_and_needs_a_policy_and_a_term_end(session, engine):
    course, *_ = _course(session)
    bare, no_end = make_course(session, label="X", title="X"), make_course(session, time_zone="UTC")
    make_policy(session, no_end)
    session.commit()
    with statements(engine) as seen:
        term = course_term(session, course.id)
    assert len(seen) == 1
    assert term == CourseTerm(course.id, course.display_name, date(2024, 12, 13), "America/Los_Angeles", 180, 14)
    assert term.name == "CS 229 - Machine Learning (Fall 2024)"
    assert course_term(session, bare.id) is None and course_term(session, no_end.id) is None


class _Keeper:
    def answer(self, answer, now):  # type: ignore[no-untyped-def]
        return "held"


def test_the_agent_writes_the_fixed_banner_and_the_notice_after_login(tmp_path):
    path, motd = str(tmp_path / "cwc_banner"), str(tmp_path / "cwc-messages")
    assert write_banner(path) and Path(path).read_text() == LOGIN_BANNER
    assert not write_banner(path)  # unchanged: not rewritten
    cfg = {"url": "http://tool/api/agent/heartbeat", "token": "t", "home": str(tmp_path), "user": "u", "motd": motd}

    def beat(answer: dict) -> str:  # type: ignore[type-arg]
        return heartbeat(cfg, _Keeper(), {}, 0, post=lambda *a: (200, answer), write_keys=lambda *a: None,
                         write_login_banner=lambda **flags: write_banner(path, **flags))  # fmt: skip

    assert beat({"authorized_keys": [], "banner": "The term ends in about 24 hours.", "motd": ""}) == "held"
    assert Path(motd).read_text() == "The term ends in about 24 hours.\n" and Path(path).read_text() == LOGIN_BANNER
    beat({"banner": "The term ends in 10 minutes.", "motd": "Staff message.\n"})
    assert Path(motd).read_text() == "The term ends in 10 minutes.\n\nStaff message.\n"
    beat({"banner": "", "motd": "Staff message.\n"})  # after the term: the staff message stays
    assert Path(motd).read_text() == "Staff message.\n"
    beat({"banner": "", "motd": ""})  # neither: nothing is shown
    assert not Path(motd).exists() and Path(path).read_text() == LOGIN_BANNER


def test_the_students_pages_show_the_banner_on_the_last_day_only(client, canvas, session):
    emily_t = tool_token(launch(client, canvas, canvas.user("student", 1)))
    teacher_t = tool_token(launch(client, canvas, canvas.user("instructor")))
    ensure_policies(session)
    course = session.scalar(select(Course))
    course.term_start, course.term_end = date(2024, 8, 26), datetime.now(UTC).date() + timedelta(days=3)
    session.commit()
    assert b"The term is ending" not in client.get("/app/home", query_string={"t": emily_t}).data
    course.term_end = datetime.now(UTC).date()  # the course is in UTC: the term ends tonight, within 24 hours
    session.commit()
    for path in ("/app/home", "/app/budget"):
        html = client.get(path, query_string={"t": emily_t}).get_data(as_text=True)
        assert "The term is ending" in html and "Your budget: $0.00 spent of $24.00" in html, path
    assert b"The term is ending" not in client.get("/app/home", query_string={"t": teacher_t}).data


def test_the_pure_rules():
    assert due_threshold(END - timedelta(hours=24, seconds=1), END) is None
    assert due_threshold(END - timedelta(hours=24), END) == "24h"
    assert due_threshold(END - timedelta(minutes=10, seconds=1), END) == "24h"
    assert due_threshold(END - timedelta(minutes=10), END) == "10min" and due_threshold(END, END) == "10min"
    assert due_threshold(END + timedelta(seconds=1), END) is None and due_threshold(END, None) is None
    assert time_left(END, END - timedelta(minutes=10)) == "10 minutes"
    assert time_left(END, END - timedelta(seconds=30)) == "1 minute"
    assert time_left(END, END - timedelta(hours=23, minutes=40)) == "about 24 hours"
    fate = Fate(True, "courses/c1/archives/", date(2025, 12, 14), date(2024, 12, 28))
    subject, body = notice_text("CS 229", END, END - timedelta(minutes=10), Decimal("30"), Decimal("24"), fate)
    assert subject == "[CS 229] The term ends in 10 minutes" and "$30.00 spent of $24.00, $0.00 left" in body
