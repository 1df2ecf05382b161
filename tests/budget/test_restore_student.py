"""Restore a student after term end: Emily's archived home comes back in a fresh workspace for 7 days, with a
top-up; her access (launch check, sweep, keys) reopens for her only and closes again by itself. Real moto, Redis,
PostgreSQL; the clock travels with time-machine."""

from __future__ import annotations

import base64
import io
import tarfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from classroom.db import make_session_factory
from classroom.jobs import context as jobs
from classroom.jobs.names import PROVISION_WORKSPACE
from classroom.models import (
    AuditEvent,
    BudgetGrant,
    Notification,
    SshKey,
    StudentRestore,
    Workspace,
    WorkspaceArchive,
)
from classroom.roles import StaffLevel
from classroom.services.budgets import policy_view
from classroom.services.enforcement import load_positions
from classroom.services.opening import Link, open_workspace
from classroom.services.restores import (
    RestoreError,
    RestoreRequest,
    parse_request,
    restore_student,
    restored_ends,
    student_view,
)
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.aws_restore import inner_name, unpack_home
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace
from provisioning.lease import lease_inputs
from provisioning.restore_end import close_expired
from provisioning.runtime.restore import restore_home
from provisioning.term_end import run_term_end, term_end_instant
from provisioning.userdata import agent_config_from_user_data
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

S = WorkspaceState
PRICES = load_prices().region("us-east-1")
ACTIONS = {"stop_all": True, "revoke_access": True, "final_report": True, "delete_all_data": False}
HW1 = Link("hw1-link", "HW1: Linear Regression", due_at=None, assignment=True)


@pytest.fixture
def closed(session, settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    """CS 229 after its term end: Emily's home archived to S3, her key revoked; the clock a day after the end."""
    jobs.use_context(jobs.JobContext(settings, make_session_factory(engine), redis, backend))
    try:
        with time_machine.travel(datetime(2024, 12, 2, 17, 0, tzinfo=UTC), tick=False) as clock:
            course = make_course(
                session, time_zone="America/Los_Angeles", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13)
            )
            make_policy(session, course, term_end_actions=ACTIONS)
            owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
            emily = make_person(session, course, name="Emily Chen")
            david = make_person(session, course, name="David Kim")
            session.add(SshKey(person_id=emily.id, course_id=course.id, public_key="ssh-ed25519 AAAA emily",
                               fingerprint="SHA256:emily", source="uploaded"))  # fmt: skip
            session.commit()
            opened = open_workspace(
                session, course, emily.id, HW1, load_catalog().get("ml-cpu-student"),
                catalog=load_catalog(), prices=PRICES, region="us-east-1",
            )  # fmt: skip
            session.commit()
            provision_workspace(opened.ws.id)
            reconcile_workspaces()
            session.expire_all()
            assert session.get(Workspace, opened.ws.id).state is S.RUNNING
            end = term_end_instant(course).astimezone(UTC)
            clock.move_to(end + timedelta(seconds=1))
            result = run_term_end(session, end + timedelta(seconds=1))
            session.commit()
            for job in result.jobs:
                module, name = job.func.rsplit(".", 1)
                getattr(__import__(module, fromlist=[name]), name)(job.workspace_id)
            session.expire_all()
            assert session.scalar(select(func.count()).select_from(WorkspaceArchive)) == 1
            clock.move_to(end + timedelta(days=1))
            yield course, owner, emily, david, clock, end
    finally:
        jobs.use_context(None)


def _counts(session) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (StudentRestore, Workspace, BudgetGrant))


def _told_restore_failed(session: Session) -> list[str]:
    subjects = select(Notification.subject).where(Notification.subject.like("%home could not be restored"))
    return list(session.scalars(subjects))


def test_restore_for_seven_days_then_access_closes_by_itself(closed, session, engine, backend, tmp_path):
    course, owner, emily, david, clock, end = closed
    now = end + timedelta(days=1)
    restore, todo = restore_student(session, course, RestoreRequest(emily.id, 7, Decimal(10)), actor_id=owner.id,
                                    now=now)  # fmt: skip
    session.commit()
    assert [j.func for j in todo] == [PROVISION_WORKSPACE]
    fresh = session.get(Workspace, restore.workspace_id)
    assert fresh.person_id == emily.id and fresh.state is S.REQUESTED
    old = session.get(Workspace, session.scalar(select(WorkspaceArchive.workspace_id)))
    assert old.id != fresh.id and old.link_key == f"{fresh.link_key}#before-restore-{restore.id}"  # set aside
    assert fresh.link_key == "template:ml-cpu-student"  # where Emily's launch looks (per-student scope)
    # the last day is 7 days on, to its end in course time (Los Angeles: 23:59:59 PST = 07:59:59 UTC next day)
    assert restore.access_until.astimezone(UTC) == datetime(2024, 12, 22, 7, 59, 59, 999999, tzinfo=UTC)
    assert session.scalar(select(BudgetGrant.amount).where(BudgetGrant.person_id == emily.id)) == Decimal(10)
    assert session.scalar(select(SshKey.revoked_at).where(SshKey.person_id == emily.id)) is None  # key reopened

    # access: Emily's term ends with the restore; David's (not restored) stays ended
    assert student_view(session, policy_view(session, course), course, emily.id, now).term_end == date(2024, 12, 21)
    assert student_view(session, policy_view(session, course), course, david.id, now).term_end == date(2024, 12, 13)
    assert set(restored_ends(session, now)) == {(course.id, emily.id)}
    # and for the agent's lease (EC2 powers itself off at the end it is told)
    assert lease_inputs(session, course.id, emily.id, "running", now, PRICES).term_end_at == restore.access_until
    assert lease_inputs(session, course.id, david.id, "running", now, PRICES).term_end_at == term_end_instant(course)

    # Emily's launch reaches the restored workspace; David's, not restored, is refused: his term has ended
    template = load_catalog().get("ml-cpu-student")
    reached = open_workspace(session, course, emily.id, HW1, template, catalog=load_catalog(), prices=PRICES,
                             region="us-east-1")  # fmt: skip
    assert reached.ws is not None and reached.ws.id == fresh.id
    refused = open_workspace(session, course, david.id, HW1, template, catalog=load_catalog(), prices=PRICES,
                             region="us-east-1")  # fmt: skip
    assert refused.ws is None and refused.decision.code == "term_ended"
    session.rollback()

    # a double click changes nothing
    again, more = restore_student(session, course, RestoreRequest(emily.id, 7, Decimal(10)), actor_id=owner.id,
                                  now=now)  # fmt: skip
    session.commit()
    assert again.id == restore.id and more == [] and _counts(session) == (1, 2, 1)

    # the fresh workspace's home is filled from the archive (the local runtime's path), once
    provision_workspace(fresh.id)
    session.expire_all()
    instance_id = session.get(Workspace, fresh.id).instance_id
    raw = backend.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    boot = base64.b64decode(raw).decode()  # EC2's path: the agent fetches the archive by a presigned GET
    archive = session.get(WorkspaceArchive, restore.archive_id)
    asked = agent_config_from_user_data(boot)["restore"]  # tests/term/test_restore_outcome.py runs the agent's part
    assert archive.s3_key in asked["url"] and asked["sha256"] == archive.sha256
    home = tmp_path / "home"
    sessions = make_session_factory(engine)
    missing = session.get(WorkspaceArchive, restore.archive_id)
    key = missing.s3_key
    body = backend.s3.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    backend.s3.delete_object(Bucket=backend.bucket, Key=key)  # S3 cannot serve it: the claim is given back
    assert restore_home(sessions, backend, fresh.id, home) == 0
    session.expire_all()
    assert session.get(StudentRestore, restore.id).restored_at is None
    assert _told_restore_failed(session) == ["Emily Chen's home could not be restored"]  # the instructor, once
    assert restore_home(sessions, backend, fresh.id, home) == 0  # the runtime's next start tries again
    assert _told_restore_failed(session) == ["Emily Chen's home could not be restored"]
    backend.s3.put_object(Bucket=backend.bucket, Key=key, Body=body)
    assert restore_home(sessions, backend, fresh.id, home) > 0
    assert (home / "homework" / "hw1-linear-regression").is_dir() and (home / ".cwc-archive.json").is_file()
    assert restore_home(sessions, backend, fresh.id, tmp_path / "again") == 0
    session.expire_all()
    assert session.get(StudentRestore, restore.id).restored_at is not None

    # the sweep sees Emily's later end while the days last and her restored workspace runs
    clock.move_to(restore.access_until - timedelta(minutes=1))
    reconcile_workspaces()  # AWS reports the new instance running: she is among the sweep's positions
    session.expire_all()
    assert session.get(Workspace, fresh.id).state is S.RUNNING
    positions = {p.person_id: p for p in load_positions(session, restore.access_until - timedelta(minutes=1), PRICES)}
    assert positions[emily.id].term_end == restore.access_until
    assert close_expired(session, restore.access_until - timedelta(minutes=1)) == []

    # the days run out: access closes again by itself, once
    after = restore.access_until + timedelta(minutes=5)
    clock.move_to(after)
    todo = close_expired(session, after)
    session.commit()
    assert [j.func for j in todo] == ["provisioning.retire.retire_workspace"]
    session.expire_all()
    assert session.get(StudentRestore, restore.id).closed_at is not None
    assert session.get(Workspace, fresh.id).retire_after is not None
    assert session.scalar(select(SshKey.revoked_at).where(SshKey.person_id == emily.id)) is not None
    assert student_view(session, policy_view(session, course), course, emily.id, after).term_end == date(2024, 12, 13)
    assert close_expired(session, after + timedelta(minutes=10)) == []
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("student.restore%")).order_by(AuditEvent.id)
    ).all()
    assert actions == ["student.restored", "student.restore_closed"]
    assert session.scalar(select(func.count()).where(AuditEvent.action == "workspace.home_restored")) == 1
    assert session.scalar(select(func.count()).where(AuditEvent.action == "workspace.restore_link_issued")) == 1
    told = session.scalars(select(Notification.subject).where(Notification.person_id == emily.id)).all()
    assert any("is back until Saturday 21 December 2024" in t for t in told)
    assert any("restored workspace has closed" in t for t in told)


def test_a_student_without_an_archive_is_refused_and_nothing_is_written(closed, session):
    course, owner, _emily, david, _clock, end = closed
    before = _counts(session)
    with pytest.raises(RestoreError, match="no archived home"):
        restore_student(session, course, RestoreRequest(david.id, 7, Decimal(5)), actor_id=owner.id,
                        now=end + timedelta(days=1))  # fmt: skip
    assert _counts(session) == before  # in the service's own transaction: nothing flushed either
    assert session.scalar(select(func.count()).where(AuditEvent.action == "student.restored")) == 0
    session.rollback()


def test_a_purged_archive_is_not_restored_and_nothing_is_written(closed, session):
    course, owner, emily, _david, _clock, end = closed
    session.execute(update(WorkspaceArchive).values(purged_at=end))  # past its retention: the object is gone
    session.commit()
    before = _counts(session)
    with pytest.raises(RestoreError, match="no archived home"):
        restore_student(session, course, RestoreRequest(emily.id, 7, Decimal(5)), actor_id=owner.id,
                        now=end + timedelta(days=1))  # fmt: skip
    assert _counts(session) == before  # in the service's own transaction: nothing flushed either
    assert session.scalar(select(func.count()).where(AuditEvent.action == "student.restored")) == 0
    session.rollback()


def test_staff_are_not_restored(closed, session):
    course, owner, _emily, _david, _clock, end = closed
    with pytest.raises(RestoreError, match="not a student"):
        restore_student(session, course, RestoreRequest(owner.id, 7, Decimal(0)), actor_id=owner.id,
                        now=end + timedelta(days=1))  # fmt: skip


def test_the_form_is_checked():
    assert parse_request({"person_id": "4", "days": "7", "top_up": "$12.50"}) == RestoreRequest(4, 7, Decimal("12.50"))
    assert parse_request({"person_id": "4", "days": "60"}).top_up == Decimal(0)
    for bad in ({"person_id": "4", "days": "0"}, {"person_id": "4", "days": "61"}, {"person_id": "x", "days": "3"},
                {"person_id": "4", "days": "3", "top_up": "-1"}, {"person_id": "4", "days": "3", "top_up": "NaN"},
                {"person_id": "4", "days": "3", "top_up": "5000"}, {"person_id": "99999999999999999999", "days": "3"},
                {"person_id": "-1", "days": "3"}):  # fmt: skip
        with pytest.raises(RestoreError):
            parse_request(bad)


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_an_archive_cannot_write_outside_the_home(tmp_path: Path):
    assert inner_name("home/ubuntu/a/b.py") == "a/b.py" and inner_name("student/notes.md") == "notes.md"
    assert inner_name("home/ubuntu") is None and inner_name("student") is None
    evil = tarfile.TarInfo("student/../../escaped.txt")
    link = tarfile.TarInfo("student/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    good = tarfile.TarInfo("student/hw/ok.txt")
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar([(evil, b"x"), (link, b""), (good, b"fine")]))
    home = tmp_path / "box" / "home"
    assert unpack_home(archive, home) == 1
    assert (home / "hw" / "ok.txt").read_text() == "fine"
    assert not (tmp_path / "box" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not (home / "link").exists()


def test_the_agent_is_asked_to_restore_only_when_there_is_one():
    from provisioning.userdata import UserDataInput, render_user_data

    base = UserDataInput(workspace_id=7, agent_url="https://tool/api/agent", agent_token="t", os_user="ubuntu",
                         ssh_public_keys=(), course_slug="cs229", region="us-east-1", file_system_id="fs-1",
                         access_point_id="fsap-1")  # fmt: skip
    assert "restore" not in agent_config_from_user_data(render_user_data(base))
    url = "https://bucket.s3.amazonaws.com/courses/c1/archives/ws3/home.tar.gz?X-Amz-Signature=a'b&X=1"
    script = render_user_data(replace(base, restore_url=url, restore_sha256="ab" * 32))
    assert agent_config_from_user_data(script)["restore"] == {"url": url, "sha256": "ab" * 32}  # JSON, not shell
    assert "CWC_CONFIG" in script and "/etc/cwc-agent.json" in script  # the root-only file the agent reads
