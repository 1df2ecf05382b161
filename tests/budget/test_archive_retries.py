"""A failed home archive is not final: a transient failure is tried again with a backoff (up to 3 tries over a few
hours) before the disk is kept and staff told; staff can then retry it or delete the disk without an archive
from the Archives page (instructors and the head TA; reason, typed confirmation, audited), and the disk ends
through the usual retire path. Real moto, PostgreSQL and Redis; the played agent answers through the web app."""

# ruff: noqa: F811 - the fixtures `cloud` and `agent_host` are imported from their modules
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from classroom.models import AuditEvent, Course, Enrollment, Notification, Person, Workspace, WorkspaceArchive
from classroom.roles import StaffLevel
from classroom.workspaces.archive_rules import ARCHIVE_WINDOW, MAX_ARCHIVE_TRIES, RETRY_AFTER, next_try_at, retry_due
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.agent_archive import ARCHIVE_BOUND, ArchiveStep, Intent, archive_step, ask_again, give_up
from provisioning.archive_staff import confirm_phrase, delete_without_archive, lock_kept, retry_archive
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import start_workspace, stop_workspace
from provisioning.retire import request_retire, retire_workspace
from tests.budget.test_agent_archive import agent_host  # noqa: F401 - a fixture
from tests.budget.test_disks_end import _running, _volumes, cloud  # noqa: F401 - `cloud` is a fixture
from tests.support.budget import ensure_policies, make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.support.lti import launch, tool_token

S = WorkspaceState
T0 = datetime(2025, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def _fresh(session, ws_id: int) -> Workspace:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Workspace, ws_id)


def _stop(session, ws_id: int) -> None:  # type: ignore[no-untyped-def]
    assert retire_workspace(ws_id) == "stop"
    stop_workspace(ws_id)
    retire_workspace(ws_id)
    assert _fresh(session, ws_id).state is S.STOPPED


def _first_try_fails(session, course, emily, clock) -> Workspace:  # type: ignore[no-untyped-def]
    """Emily's running workspace is removed; its agent never answers within the bound; it is stopped."""
    ws = _running(session, course, emily)
    request_retire(session, ws, actor_person_id=None, actor="staff", reason="test", after=ws.created_at)
    session.commit()
    assert retire_workspace(ws.id) == "request-archive"  # no tick: the agent never answers
    clock.move_to(ws.created_at + ARCHIVE_BOUND + MIN)
    assert retire_workspace(ws.id) == "keep-disk"
    _stop(session, ws.id)
    return _fresh(session, ws.id)


def _try_in_window_fails(session, ws_id: int, clock) -> None:  # type: ignore[no-untyped-def]
    """The backoff has passed: a new try starts it for its archive only; no archive comes within the window."""
    retry_at = _fresh(session, ws_id).archive_retry_at
    clock.move_to(retry_at)
    assert retire_workspace(ws_id) == "start-for-archive"
    start_workspace(ws_id)
    reconcile_workspaces()
    assert _fresh(session, ws_id).state is S.RUNNING
    clock.move_to(retry_at + ARCHIVE_WINDOW + MIN)
    assert retire_workspace(ws_id) == "keep-disk"
    _stop(session, ws_id)


def test_a_failed_archive_is_tried_again_with_a_backoff_then_the_disk_kept_and_staff_told(
    cloud, agent_host, session, backend
):
    course, emily, clock = cloud
    ws = _first_try_fails(session, course, emily, clock)
    first = ws.archive_failed_at
    assert ws.archive_tries == 1 and ws.archive_retry_at == first + RETRY_AFTER[0]
    assert _audits(session, "workspace.archive_try_failed") == 1 and _audits(session, "workspace.archive_failed") == 0
    assert session.scalar(select(func.count()).select_from(Notification)) == 0  # not told yet: it is tried again
    clock.move_to(ws.archive_retry_at - MIN)
    assert retire_workspace(ws.id) == "nothing"  # the backoff
    _try_in_window_fails(session, ws.id, clock)
    ws = _fresh(session, ws.id)
    assert ws.archive_tries == 2 and ws.archive_retry_at == ws.archive_failed_at + RETRY_AFTER[1]
    _try_in_window_fails(session, ws.id, clock)
    ws = _fresh(session, ws.id)
    assert ws.archive_tries == MAX_ARCHIVE_TRIES and ws.archive_retry_at is None  # given up
    assert ws.archive_failed_at - first < timedelta(hours=4)  # three tries over a few hours
    assert _audits(session, "workspace.archive_retry") == 2 and _audits(session, "workspace.archive_failed") == 1
    told = session.scalars(select(Notification.body).where(Notification.course_id == course.id)).all()
    assert len(told) == 1 and "Archives page" in told[0]
    clock.move_to(ws.archive_failed_at + timedelta(days=30))
    assert retire_workspace(ws.id) == "nothing"  # never deleted without an archive
    assert _fresh(session, ws.id).state is S.STOPPED and _volumes(backend, ws.id)


def _given_up(session, course, emily, clock) -> Workspace:  # type: ignore[no-untyped-def]
    ws = _running(session, course, emily)
    ws.archive_tries = MAX_ARCHIVE_TRIES - 1  # its last try
    request_retire(session, ws, actor_person_id=None, actor="staff", reason="test", after=ws.created_at)
    session.commit()
    assert retire_workspace(ws.id) == "request-archive"
    clock.move_to(ws.created_at + ARCHIVE_BOUND + MIN)
    assert retire_workspace(ws.id) == "keep-disk"
    _stop(session, ws.id)
    ws = _fresh(session, ws.id)
    assert ws.archive_retry_at is None and ws.archive_failed_at is not None
    return ws


def test_staff_retry_makes_the_retire_flow_archive_it(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws = _given_up(session, course, emily, clock)
    owner = session.scalar(select(Enrollment.person_id).where(Enrollment.level == StaffLevel.OWNER))
    todo = retry_archive(session, lock_kept(session, course.id, ws.id), actor_person_id=owner, reason="agent fixed")
    session.commit()
    assert [j.workspace_id for j in todo] == [ws.id]
    ws = _fresh(session, ws.id)
    assert ws.archive_failed_at is None and ws.archive_tries == 0 and lock_kept(session, course.id, ws.id) is None
    session.rollback()
    assert retire_workspace(ws.id) == "start-for-archive"  # the retire flow tries again, from the start
    start_workspace(ws.id)
    reconcile_workspaces()
    agent_host.tick()  # uploads
    agent_host.tick()  # and reports
    assert retire_workspace(ws.id) == "stop"  # verified and recorded
    assert session.scalar(select(WorkspaceArchive.id).where(WorkspaceArchive.workspace_id == ws.id)) is not None
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.archive_retry")).one()
    assert event.actor_person_id == owner and event.details["reason"] == "agent fixed"


def test_staff_delete_without_an_archive_ends_the_disk_through_the_retire_path(cloud, agent_host, session, backend):
    course, emily, clock = cloud
    ws = _given_up(session, course, emily, clock)
    owner = session.scalar(select(Enrollment.person_id).where(Enrollment.level == StaffLevel.OWNER))
    locked = lock_kept(session, course.id, ws.id)
    typed = f"  DELETE {ws.id}"  # case and spaces aside
    delete_without_archive(session, locked, actor_person_id=owner, reason="gone", typed=typed, now=datetime.now(UTC))
    session.commit()
    assert retire_workspace(ws.id) == "observe-end"  # terminated as after an archive, no archive made
    retire_workspace(ws.id)
    ws = _fresh(session, ws.id)
    assert ws.state is S.TERMINATED and _volumes(backend, ws.id) == []
    assert session.scalar(select(func.count()).select_from(WorkspaceArchive)) == 0
    assert _audits(session, "workspace.disk_deleted_without_archive") == 1 and _audits(session, "workspace.removed")


def test_the_retry_rules():
    assert next_try_at(1, T0, True) == T0 + RETRY_AFTER[0] and next_try_at(2, T0, True) == T0 + RETRY_AFTER[1]
    assert next_try_at(MAX_ARCHIVE_TRIES, T0, True) is None  # the last try: given up
    assert next_try_at(1, T0, False) is None  # money refused: not retried by itself
    assert next_try_at(0, T0, True) is None
    assert not retry_due(None, T0) and not retry_due(T0 + MIN, T0) and retry_due(T0, T0)
    failed = Intent(T0, reported=False, failed=True, retry_at=T0 + MIN)
    assert archive_step(S.STOPPED, True, T0, False, failed, T0) is ArchiveStep.KEPT
    assert archive_step(S.STOPPED, True, T0, False, failed, T0 + MIN) is ArchiveStep.RETRY
    assert archive_step(S.RUNNING, True, T0, False, failed, T0 + MIN) is ArchiveStep.USUAL  # stopped first
    given_up = Intent(T0, reported=False, failed=True)
    assert archive_step(S.STOPPED, True, T0, False, given_up, T0 + timedelta(days=99)) is ArchiveStep.KEPT


def _form(app, token, **fields):  # type: ignore[no-untyped-def]
    from lti_app.auth import csrf_token

    with app.app_context():
        return {"t": token, "csrf_token": csrf_token(token), **fields}


def _kept_in_web_course(session, link: str = "hw1"):  # type: ignore[no-untyped-def]
    ensure_policies(session)
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    ws = make_running(session, course.id, emily.id, T0, link=link)
    ws.state, ws.retire_after, ws.archive_failed_at, ws.archive_tries = S.STOPPED, T0, T0, MAX_ARCHIVE_TRIES
    session.commit()
    return ws


def _row(session, ws_id: int) -> tuple:  # type: ignore[no-untyped-def]
    ws = _fresh(session, ws_id)
    return (ws.archive_failed_at, ws.archive_tries, ws.archive_waived_at, ws.retire_after, ws.archive_retry_at)


def test_kept_disk_actions_roles_and_nothing_written_on_refusal(app, client, canvas, session):
    emily_t = tool_token(launch(client, canvas, canvas.user("student", 1)))
    ta = tool_token(launch(client, canvas, canvas.user("ta")))
    instructor = tool_token(launch(client, canvas, canvas.user("instructor")))
    other = tool_token(launch(client, canvas, canvas.user("instructor", 2), context_id="cs231-fall2024"))
    ws = _kept_in_web_course(session)
    before = _row(session, ws.id)
    retry, delete = f"/app/archives/kept/{ws.id}/retry", f"/app/archives/kept/{ws.id}/delete"
    fields = {"reason": "the student asked", "confirm": confirm_phrase(ws.id)}

    as_ta = client.get("/app/archives", query_string={"t": ta}).get_data(as_text=True)
    assert "Disks kept without an archive" in as_ta and "Retry archive" not in as_ta  # read-only
    refused = {"student": (emily_t, 403), "read-only TA": (ta, 403), "instructor of another course": (other, 404)}
    for url in (retry, delete):
        for who, (token, status) in refused.items():
            assert client.post(url, data=_form(app, token, **fields)).status_code == status, (url, who)
        assert client.post(url, data={"t": instructor, **fields}).status_code == 403  # no CSRF value
        assert client.post(url, data=_form(app, instructor)).status_code == 422  # no reason
    wrong = client.post(delete, data=_form(app, instructor, reason="gone", confirm="delete"))
    assert wrong.status_code == 422 and confirm_phrase(ws.id) in wrong.get_data(as_text=True)
    assert _row(session, ws.id) == before  # nothing written by any refusal
    assert _audits(session, "workspace.archive_retry") == 0
    assert _audits(session, "workspace.disk_deleted_without_archive") == 0

    page = client.get("/app/archives", query_string={"t": instructor}).get_data(as_text=True)
    assert "Retry archive" in page and "Delete the disk without an archive" in page
    assert client.post(retry, data=_form(app, instructor, reason="try again")).status_code == 303
    failed_at, tries, *_ = _row(session, ws.id)
    assert failed_at is None and tries == 0 and _audits(session, "workspace.archive_retry") == 1
    again = client.post(retry, data=_form(app, instructor, reason="try again"))  # a second click: done once
    assert again.status_code == 303 and _audits(session, "workspace.archive_retry") == 1
    assert client.post(delete, data=_form(app, instructor, **fields)).status_code == 404  # no longer kept

    ws = _kept_in_web_course(session, "hw2")
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))
    enrollment.level = StaffLevel.HEAD_TA
    session.commit()
    done = client.post(
        f"/app/archives/kept/{ws.id}/delete", data=_form(app, ta, reason="lost", confirm=f"delete {ws.id}")
    )
    assert done.status_code == 303
    twice = client.post(
        f"/app/archives/kept/{ws.id}/delete", data=_form(app, ta, reason="lost", confirm=f"delete {ws.id}")
    )
    assert twice.status_code == 303  # a second click: done once (one audit event, below)
    _, _, waived, retire_after, _ = _row(session, ws.id)
    assert waived is not None and retire_after <= waived
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "workspace.disk_deleted_without_archive")
    ).one()
    assert event.details["reason"] == "lost" and event.subject == str(ws.id)


def test_a_failure_found_for_an_old_request_does_not_land_on_a_newer_one(session):
    """The retire flow decided "keep the disk" for a request; staff retried before it wrote: the new try stands."""
    course = make_course(session)
    make_policy(session, course)
    person = make_person(session, course)
    ws = make_running(session, course.id, person.id, T0, link="stale")
    ws.retire_after, ws.archive_requested_at = T0, T0
    session.commit()
    old_request = ws.archive_requested_at
    ask_again(session.get(Workspace, ws.id), T0 + timedelta(hours=3))  # staff's retry: a new request
    session.commit()
    give_up(session, ws.id, "no archive within 30 minutes", of_request=old_request)
    stale = _fresh(session, ws.id)
    assert stale.archive_failed_at is None and stale.archive_tries == 0  # the newer try goes on
    assert _audits(session, "workspace.archive_try_failed") == 0
    give_up(session, ws.id, "no archive within 30 minutes", of_request=stale.archive_requested_at)
    assert _fresh(session, ws.id).archive_failed_at is not None  # the current request's failure is recorded
