"""The last day of a 50-student CS 229 term, on time-machine's clock, through the real jobs: the minute's sweep
(metering), the term-end pass (`close_terms`, some of its passes), the cloud jobs it releases and reconcile, all
against simulated AWS (moto) and PostgreSQL. Students have running, stopped and hibernated workspaces (and some
none) and three days of metered spend. At T-24h and T-10min every student is warned once (tool, email, login
banner) with their final budget figure; at term end everything stops (desired and observed), the homes are
archived under the lifecycle rule, access is revoked, and the final report's figures equal sums the test takes
from the ledger and the audit trail itself. Passes run again change nothing."""

from __future__ import annotations

import base64
import importlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import func, select, text

from classroom.audit import append_event
from classroom.budget.policy import money
from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, current, use_context
from classroom.models import (
    AlertSent,
    AuditEvent,
    CourseCharge,
    LedgerEntry,
    Notification,
    OutboxEmail,
    SshKey,
    Workspace,
    WorkspaceArchive,
)
from classroom.roles import StaffLevel
from classroom.services.final_report import final_report
from classroom.services.opening import Link, open_workspace
from classroom.services.term_notices import student_notice
from classroom.services.workspaces import Job, request_stop
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.agent_service import HeartbeatRejected, parse_report, record_heartbeat
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.sweep import meter_and_enforce
from provisioning.jobs.term import close_terms
from provisioning.lease import DEFAULT_LEASE
from provisioning.ssh_keys import add_key, generate_key_pair
from provisioning.userdata import agent_config_from_user_data
from tests.conftest import count_rows
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S, D = WorkspaceState, DesiredState
PRICES = load_prices().region("us-east-1")
CATALOG = load_catalog()
ACTIONS = {"stop_all": True, "archive": True, "revoke_access": True, "final_report": True, "delete_all_data": False}
END = datetime(2024, 12, 14, 7, 59, 59, 999999, tzinfo=UTC)  # 13 December, 23:59:59 in Los Angeles
START = END - timedelta(days=3)
RUNNING, STOPPED, HIBERNATED, NONE = 16, 14, 12, 8  # 50 students
WRITES = ("workspaces", "workspace_events", "audit_events", "notifications", "outbox_emails", "alerts_sent",
          "workspace_archives", "ledger_entries")  # fmt: skip


class InlineJobs(JobContext):
    """The worker, in-process: released jobs run right after the commit that released them (in order)."""

    def release(self, jobs: list[Job]) -> None:
        for job in jobs:
            module, name = job.func.rsplit(".", 1)
            getattr(importlib.import_module(module), name)(job.workspace_id)


@pytest.fixture
def term(session, settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    use_context(InlineJobs(settings, make_session_factory(engine), redis, backend))
    try:
        with time_machine.travel(START, tick=False) as clock:
            yield clock
    finally:
        use_context(None)


def _cs229(session):  # type: ignore[no-untyped-def]
    course = make_course(
        session, time_zone="America/Los_Angeles", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13)
    )
    make_policy(session, course, term_end_actions=ACTIONS, archive_retention_days=365)
    owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    levels = (("Alex Thompson", StaffLevel.HEAD_TA), ("Priya Sharma", StaffLevel.TA), ("Kevin Wu", StaffLevel.TA))
    tas = [make_person(session, course, name=n, level=lvl) for n, lvl in levels]
    named = ["Emily Chen", "David Kim", "Sophie Martinez"]
    students = [make_person(session, course, name=named[n] if n < 3 else f"Student{n:02d} Doe") for n in range(50)]
    for p in students[::5]:
        add_key(session, person_id=p.id, course_id=course.id, public_key=generate_key_pair(p.name)[1],
                source="uploaded")  # fmt: skip
    session.add(CourseCharge(course_id=course.id, person_id=None, kind="efs", ref="fs-1", period_start=START,
                             period_end=START, quantity=Decimal(1), amount=Decimal("3.20")))  # fmt: skip
    session.commit()
    return course, owner, tas, students


def _open(session, course, person, hw: str) -> Workspace:  # type: ignore[no-untyped-def]
    link = Link(f"{hw}-link", hw.upper(), due_at=None, assignment=True)
    opened = open_workspace(session, course, person.id, link, CATALOG.get("ml-cpu-student"), catalog=CATALOG,
                            prices=PRICES, region="us-east-1")  # fmt: skip
    assert opened.ws is not None, opened.decision
    session.commit()
    current().release(opened.jobs)
    return opened.ws


def _minutes(clock, session, at: datetime, agents: dict[int, str]) -> None:  # type: ignore[no-untyped-def]
    """The clock moves to `at`; the running workspaces' agents report a working student (their heartbeat API),
    then the minute's sweep meters (and enforces) as it does every minute."""
    clock.move_to(at)
    up = session.scalars(select(Workspace.id).where(Workspace.id.in_(agents), Workspace.state == S.RUNNING)).all()
    for ws_id in up:
        report = parse_report({"workspace_id": ws_id, "ssh_sessions": 1, "cpu_pct": 30})
        record_heartbeat(session, agents[ws_id], report, prices=PRICES, lease=DEFAULT_LEASE, now=at)
    session.commit()
    meter_and_enforce()
    session.expire_all()


def _spent(session, course_id: int) -> dict[int, Decimal]:  # type: ignore[no-untyped-def]
    """Each student's spend, summed from the ledger here (not through spend_daily or the services)."""
    rows = session.execute(
        select(LedgerEntry.person_id, func.sum(LedgerEntry.compute + LedgerEntry.storage))
        .where(LedgerEntry.course_id == course_id)
        .group_by(LedgerEntry.person_id)
    )
    return {p: Decimal(s) for p, s in rows}


def _token(backend, instance_id: str) -> str:  # type: ignore[no-untyped-def]
    """The agent's token, read from its instance's user data in simulated AWS (as the agent reads it)."""
    raw = backend.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return str(agent_config_from_user_data(base64.b64decode(raw["UserData"]["Value"]).decode())["token"])


def _warned(session, course, students, tokens, threshold: str, phrase: str) -> None:  # type: ignore[no-untyped-def]
    """Every student has exactly one notice of this threshold, by tool, email and login banner, with the figure."""
    spent = _spent(session, course.id)
    notes = session.scalars(select(Notification).where(Notification.subject.like(f"%The term ends {phrase}"))).all()
    assert sorted(n.person_id for n in notes) == sorted(p.id for p in students)  # each once; never the staff
    emails = session.scalars(select(OutboxEmail).where(OutboxEmail.subject.like(f"%The term ends {phrase}"))).all()
    assert sorted(e.to_address for e in emails) == sorted(p.email for p in students)
    assert session.scalar(select(func.count()).where(AlertSent.kind == f"term-end-{threshold}")) == 50
    now = datetime.now(UTC)
    by_person = {n.person_id: n.body for n in notes}
    for p in students:
        body = by_person[p.id]
        figure = spent.get(p.id, Decimal(0))
        assert f"Your budget: {money(figure)} spent of $24.00, {money(Decimal(24) - figure)} left." in body, body
        assert student_notice(session, course.id, p.id, now) == body  # the tool's banner on every page
    for ws_id, token in tokens.items():  # the running workspaces' agents: the SSH login banner
        ws = session.get(Workspace, ws_id)
        report = parse_report({"workspace_id": ws_id, "ssh_sessions": 1, "cpu_pct": 30})
        answer = record_heartbeat(session, token, report, prices=PRICES, lease=DEFAULT_LEASE, now=now)
        assert answer.as_json()["banner"] == by_person[ws.person_id]
    session.commit()


def test_the_last_day_of_a_fifty_student_term(term, session, backend, engine):  # noqa: PLR0915
    clock = term
    course, owner, tas, students = _cs229(session)
    # three days before the end: everyone with a workspace starts it; some stop, some hibernate, later
    opened = [_open(session, course, p, "hw5") for p in students[: RUNNING + STOPPED + HIBERNATED]]
    reconcile_workspaces()
    session.expire_all()
    assert {session.get(Workspace, w.id).state for w in opened} == {S.RUNNING}
    tokens = {w.id: _token(backend, w.instance_id) for w in opened}
    for hours in (2, 5, 9):
        _minutes(clock, session, START + timedelta(hours=hours), tokens)
    for n, ws in enumerate(opened[RUNNING:]):  # the Stop button (hibernate where the student chose it)
        ws = session.get(Workspace, ws.id, with_for_update=True)
        todo = request_stop(session, ws, actor_person_id=ws.person_id, actor="student", reason="done for today",
                            hibernate=n >= STOPPED)  # fmt: skip
        session.commit()
        current().release(todo)
    reconcile_workspaces()
    session.expire_all()
    states = [session.get(Workspace, w.id).state for w in opened]
    assert states == [S.RUNNING] * RUNNING + [S.STOPPED] * STOPPED + [S.HIBERNATED] * HIBERNATED
    for n, ta in enumerate(tas):  # office hours, audited by the staff services under these names
        for k in range(n + 2):
            append_event(session, "debug.session.start", actor_person_id=ta.id, course_id=course.id,
                         details={"session": f"s{n}-{k}"})  # fmt: skip
        for _ in range(3 - n):
            append_event(session, "message.sent", actor_person_id=ta.id, course_id=course.id)
        append_event(session, "workspace.reset", actor_person_id=ta.id, course_id=course.id)
    session.commit()
    for hours in (24, 36, 47):
        _minutes(clock, session, START + timedelta(hours=hours), tokens)

    # T-24h: the first pass inside the last day
    first = END - timedelta(hours=23, minutes=55)
    _minutes(clock, session, first, tokens)
    assert close_terms() == {"warned": 50, "closed": 0, "jobs": 0}
    session.expire_all()
    _warned(session, course, students, {w.id: tokens[w.id] for w in opened[:RUNNING]}, "24h", "in about 24 hours")
    _minutes(clock, session, first + timedelta(minutes=10), tokens)
    assert close_terms()["warned"] == 0  # the next pass: nothing again

    # T-10min
    _minutes(clock, session, END - timedelta(minutes=5), tokens)
    assert close_terms() == {"warned": 50, "closed": 0, "jobs": 0}
    session.expire_all()
    _warned(session, course, students, {w.id: tokens[w.id] for w in opened[:RUNNING]}, "10min", "in 5 minutes")
    assert session.scalar(select(func.count()).where(OutboxEmail.subject.like("%The term ends%"))) == 100

    # term end: the pass after 23:59:59 closes the course; its jobs stop, archive and keep the disks for the grace
    _minutes(clock, session, END + timedelta(minutes=5), tokens)
    closed = close_terms()
    assert closed == {"warned": 0, "closed": 1, "jobs": len(opened)}  # a retirement each (archive, then the disk)
    at_close = sum(_spent(session, course.id).values()) + Decimal("3.20")  # what the emailed report says
    reconcile_workspaces()
    _minutes(clock, session, END + timedelta(minutes=15), tokens)
    close_terms()  # the next pass revokes the agents of the stopped instances
    session.expire_all()
    rows = session.scalars(select(Workspace).where(Workspace.course_id == course.id).order_by(Workspace.id)).all()
    # the minute's sweep asked the running ones to hibernate (term over); the archive's clean stop is observed
    assert [(w.desired_state, w.state) for w in rows] == [(D.HIBERNATED, S.STOPPED)] * RUNNING + [
        (D.STOPPED, S.STOPPED)
    ] * STOPPED + [(D.HIBERNATED, S.HIBERNATED)] * HIBERNATED
    stops = select(func.count()).where(text("actor = 'enforcement' AND reason = 'the term is over'"))
    assert session.scalar(stops.select_from(text("workspace_events"))) == RUNNING
    aws = {i.instance_id: i.state for i in backend.describe([w.instance_id for w in rows])}
    assert set(aws.values()) == {"stopped"} and len(aws) == len(rows)
    assert all(w.agent_token_revoked_at is not None for w in rows)

    archives = session.scalars(select(WorkspaceArchive).where(WorkspaceArchive.course_id == course.id)).all()
    assert sorted(a.workspace_id for a in archives) == [w.id for w in rows]
    prefix = f"courses/c{course.id}/archives/"
    listed = backend.s3.list_objects_v2(Bucket=backend.bucket, Prefix=prefix)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(a.s3_key for a in archives)
    assert {o["Size"] for o in listed} == {a.size_bytes for a in archives}
    rules = backend.s3.get_bucket_lifecycle_configuration(Bucket=backend.bucket)["Rules"]
    assert [(r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules] == [(prefix, 365, "Enabled")]

    # access: keys revoked, agents refused, a student's launch refused with its message and nothing written
    assert session.scalar(select(func.count()).where(SshKey.course_id == course.id, SshKey.revoked_at.is_(None))) == 0
    with pytest.raises(HeartbeatRejected):
        record_heartbeat(session, tokens[rows[0].id], parse_report({"workspace_id": rows[0].id}), prices=PRICES,
                         lease=DEFAULT_LEASE)  # fmt: skip
    session.rollback()
    before = [count_rows(engine, t) for t in WRITES]
    hw6 = Link("hw6-link", "HW6", due_at=None, assignment=True)
    refused = open_workspace(session, course, students[-1].id, hw6, CATALOG.get("ml-cpu-student"), catalog=CATALOG,
                             prices=PRICES, region="us-east-1")  # fmt: skip
    session.commit()
    assert refused.ws is None and refused.jobs == [] and refused.decision.code == "term_ended"
    assert refused.decision.message == "The term ended on December 13, 2024; workspaces are closed."
    assert [count_rows(engine, t) for t in WRITES] == before

    # the final report, sent once to the instructor; its figures against the tables, summed here
    report = final_report(session, session.get(type(course), course.id))
    assert report is not None
    spent = _spent(session, course.id)
    per = [spent.get(p.id, Decimal(0)) for p in students]
    charges = session.scalar(select(func.sum(CourseCharge.amount)).where(CourseCharge.course_id == course.id))
    seconds = session.scalar(select(func.sum(LedgerEntry.running_seconds)).where(LedgerEntry.course_id == course.id))
    assert report.students == 50 and report.total_spent == sum(per) + charges
    assert (report.lowest, report.highest) == (min(per), max(per)) and report.lowest == 0  # those without one
    assert report.average == sum(per) / 50 and report.under_budget == 50 - report.over_budget
    assert report.compute_hours == seconds / 3600 and report.over_budget == sum(1 for s in per if s > 24)
    assert sum(report.efficiency.values()) == 50 and report.efficiency["no data"] == NONE  # heartbeats: the agents'
    staff = session.execute(
        select(AuditEvent.action, func.count()).where(AuditEvent.course_id == course.id,
                                                      AuditEvent.actor_person_id.in_([t.id for t in tas]))
        .group_by(AuditEvent.action)
    ).all()  # fmt: skip
    counts = dict(staff)
    assert (report.debug_sessions, report.resets, report.messages) == (
        counts["debug.session.start"], counts["workspace.reset"], counts["message.sent"])  # fmt: skip
    busiest = max(tas, key=lambda t: session.scalar(select(func.count()).where(AuditEvent.actor_person_id == t.id)))
    assert report.most_active is not None and report.most_active[0] == busiest.name
    assert (report.source.archives.count, report.source.archives.size_bytes) == (
        len(archives), sum(a.size_bytes for a in archives))  # fmt: skip
    sent = session.scalars(select(Notification).where(Notification.subject.like("%Final course report"))).all()
    assert [n.person_id for n in sent] == [owner.id]
    assert f"Total spent: {money(at_close)} (" in sent[0].body  # the ledger at the close (disks accrue since)
    assert report.total_spent > at_close

    # passes run again (a retried job, the next ten minutes, an hour on): nothing twice
    outbox, objects = count_rows(engine, "outbox_emails"), len(listed)
    for minutes in (25, 35, 65):
        _minutes(clock, session, END + timedelta(minutes=minutes), tokens)
        assert close_terms() == {"warned": 0, "closed": 0, "jobs": 0}
    reconcile_workspaces()
    assert count_rows(engine, "outbox_emails") == outbox and count_rows(engine, "workspace_archives") == len(rows)
    assert len(backend.s3.list_objects_v2(Bucket=backend.bucket, Prefix=prefix)["Contents"]) == objects
    assert session.scalar(select(func.count()).where(AuditEvent.action == "course.closed")) == 1
    assert session.scalar(select(func.count()).where(AuditEvent.action == "report.final_sent")) == 1
