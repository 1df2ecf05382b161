"""Reconcile describes every managed instance once a minute and, between, only what may have changed: instances in
a moving or billed AWS state, and by id those of rows not at rest. What is judged, what is not, and that a failed
full describe is retried in full. Real moto, PostgreSQL and Redis; the production default cadence (60 s)."""

from __future__ import annotations

import pytest

from classroom.db import make_session_factory
from classroom.jobs.context import JobContext, use_context
from classroom.models import Workspace
from classroom.services.workspaces import request_stop, request_workspace
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from provisioning.backend import CloudError
from provisioning.jobs.reconcile import FULL_KEY, reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace, stop_workspace
from provisioning.reconcile import MISSING, WorkspaceRow, judged, plan_reconcile, to_ask
from tests.support.factories import make_course, make_person

S = WorkspaceState
DEFAULT = load_catalog().get("ml-cpu-student")


@pytest.fixture
def job_ctx(settings, backend, redis, engine):  # type: ignore[no-untyped-def]
    assert settings.reconcile_full_every_s == 60  # the production default
    use_context(JobContext(settings, make_session_factory(engine), redis, backend))
    yield
    use_context(None)


def _running(session, course, name: str) -> Workspace:  # type: ignore[no-untyped-def]
    person = make_person(session, course, name=name)
    session.commit()
    ws, _ = request_workspace(session, course_id=course.id, person_id=person.id, link_key="hw", link_title="HW",
                              template=DEFAULT, region="us-east-1")  # fmt: skip
    session.commit()
    provision_workspace(ws.id)
    return ws


def _two(session) -> tuple[Workspace, Workspace]:  # type: ignore[no-untyped-def]
    """Emily's workspace running, Sophie's stopped, both recorded by a full pass; the next pass is between."""
    course = make_course(session)
    emily, sophie = _running(session, course, "Emily Chen"), _running(session, course, "Sophie Martin")
    assert reconcile_workspaces()["full"] == 1
    session.refresh(sophie, with_for_update=True)
    request_stop(session, sophie, actor_person_id=sophie.person_id, actor="student", reason="done")
    session.commit()
    stop_workspace(sophie.id)
    assert reconcile_workspaces()["full"] == 0  # her STOPPING row is asked for by id
    session.refresh(emily)
    session.refresh(sophie)
    assert (emily.state, sophie.state) == (S.RUNNING, S.STOPPED)
    return emily, sophie


def test_between_full_passes_a_stopped_instance_is_not_described(session, job_ctx, backend):
    _two(session)
    result = reconcile_workspaces()
    assert (result["full"], result["instances"]) == (0, 1)  # Emily's running one only
    assert len(backend.describe_managed()) == 2


def test_an_instance_started_behind_the_tools_back_is_seen_between_full_passes(session, job_ctx, backend):
    _, sophie = _two(session)
    backend.ec2.start_instances(InstanceIds=[sophie.instance_id])  # someone in the AWS console
    assert reconcile_workspaces()["full"] == 0
    session.refresh(sophie)
    assert sophie.state is S.RUNNING  # metered (and enforced) from now, not a minute later


def test_a_vanished_stopped_instance_is_judged_only_at_the_next_full_pass(session, job_ctx, backend, redis):
    emily, sophie = _two(session)
    real_describe_managed, real_describe = backend.describe_managed, backend.describe
    gone = {sophie.instance_id}

    def listed(*states):  # type: ignore[no-untyped-def]
        return [i for i in real_describe_managed(*states) if i.instance_id not in gone]

    backend.describe_managed = listed  # type: ignore[method-assign]  # AWS no longer lists her instance
    backend.describe = lambda ids: [i for i in real_describe(ids) if i.instance_id not in gone]  # type: ignore[method-assign]
    for _ in range(2):
        assert reconcile_workspaces()["full"] == 0
    session.refresh(sophie)
    assert sophie.state is S.STOPPED  # not judged: a pass between full ones does not look at rows at rest
    for _ in range(2):  # a minute later, twice (one miss may be AWS's list lagging behind)
        redis.delete(FULL_KEY)
        assert reconcile_workspaces()["full"] == 1
    session.refresh(sophie)
    session.refresh(emily)
    assert sophie.state is S.TERMINATED and emily.state is S.RUNNING


def test_a_failed_full_describe_is_retried_in_full(session, job_ctx, backend, redis):
    course = make_course(session)
    _running(session, course, "Emily Chen")
    real = backend.describe_managed

    def refused(*states):  # type: ignore[no-untyped-def]
        if not states:
            raise CloudError("AWS refused DescribeInstances")
        return real(*states)

    backend.describe_managed = refused  # type: ignore[method-assign]
    with pytest.raises(CloudError):
        reconcile_workspaces()
    assert not redis.exists(FULL_KEY)
    backend.describe_managed = real  # type: ignore[method-assign]
    assert reconcile_workspaces()["full"] == 1 and redis.ttl(FULL_KEY) > 0


def test_what_a_pass_between_full_ones_asks_for_and_judges():
    rows = [
        WorkspaceRow(1, S.RUNNING, "i-run"),
        WorkspaceRow(2, S.STOPPING, "i-stopping"),
        WorkspaceRow(3, S.STOPPED, "i-rest"),
        WorkspaceRow(4, S.HIBERNATED, "i-hib"),
        WorkspaceRow(5, S.REQUESTED, None),
        WorkspaceRow(6, S.TERMINATED, "i-old"),  # not live
    ]
    seen = {"i-run", "i-hib"}
    assert to_ask(rows, seen) == ["i-stopping"]
    assert judged(rows, seen) == frozenset({1, 2, 4, 5, 6})
    plan = plan_reconcile(rows, [], judged(rows, set()))  # nothing listed: only rows not at rest may be missing
    assert {(c.workspace_id, c.reason) for c in plan.changes} == {(1, MISSING), (2, MISSING)}
    assert plan_reconcile(rows, [], None).changes[-1].workspace_id == 4  # a full pass judges the rows at rest too
