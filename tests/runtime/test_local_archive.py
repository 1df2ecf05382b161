"""Retiring a local workspace archives its REAL home (the runtime's folder) to S3 before the home is removed, and
restoring the student brings the same bytes back. Real bwrap sandboxes, real SSH, moto's S3, PostgreSQL, Redis."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from classroom.db import make_session_factory, utcnow
from classroom.jobs.context import JobContext, use_context
from classroom.models import CoursePolicy, StudentRestore, Workspace, WorkspaceArchive
from classroom.roles import StaffLevel
from classroom.services.restores import RestoreRequest, restore_student
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.aws_archive import HomeArchive
from provisioning.jobs.reconcile import reconcile_workspaces
from provisioning.jobs.workspace import provision_workspace, stop_workspace
from provisioning.retire import request_retire, retire_workspace
from tests.runtime.conftest import ssh_run
from tests.support.budget import make_policy
from tests.support.factories import make_person

WRITE = (
    "mkdir -p homework/hw1 .ssh && printf 'w = [0.5, 1.5]\\n' > homework/hw1/model.py && "
    "head -c 4096 /dev/urandom > data.bin && echo not-for-the-archive > .ssh/id_ed25519 && ln -s homework/hw1 hw1"
)


@pytest.fixture
def jobs(settings, engine, redis, backend, data_dir):  # type: ignore[no-untyped-def]
    """The worker's context: same data folder, so the jobs see the runtime's homes."""
    use_context(JobContext(settings.with_(data_dir=data_dir), make_session_factory(engine), redis, backend))
    yield
    use_context(None)


def _retire(session, ws_id: int) -> str:  # type: ignore[no-untyped-def]
    """A student's Remove, run to the end: stop, observed, archived, disk deleted (no grace)."""
    ws = session.get(Workspace, ws_id)
    request_retire(session, ws, actor_person_id=ws.person_id, actor="student", reason="Remove", after=utcnow())
    session.commit()
    assert retire_workspace(ws_id) == "stop"
    assert stop_workspace(ws_id) in ("stopped", "stopping")
    return retire_workspace(ws_id)


def _members(body: bytes) -> dict[str, tarfile.TarInfo | bytes]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else m) for m in tar.getmembers()}  # type: ignore[union-attr]


def test_retiring_archives_the_real_home_before_the_runtime_removes_it(runtime, make_workspace, session, backend,
                                                                        jobs):  # fmt: skip
    emily = make_workspace()
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], WRITE)[0] == 0
    home = runtime.rt.home(emily.workspace.instance_id)
    data = (home / "data.bin").read_bytes()

    assert _retire(session, emily.workspace.id) == "observe-end"
    session.expire_all()
    assert session.get(Workspace, emily.workspace.id).state is WorkspaceState.TERMINATED
    archive = session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == emily.workspace.id))
    assert (home / "data.bin").read_bytes() == data  # terminated, archived, not yet synced: the home is still here
    body = backend.s3.get_object(Bucket=backend.bucket, Key=archive.s3_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == archive.sha256 and len(body) == archive.size_bytes
    members = _members(body)
    assert members["home/ubuntu/homework/hw1/model.py"] == b"w = [0.5, 1.5]\n"
    assert members["home/ubuntu/data.bin"] == data
    link = members["home/ubuntu/hw1"]
    assert isinstance(link, tarfile.TarInfo) and link.issym() and link.linkname == "homework/hw1"
    assert not any(".ssh" in name for name in members) and "home/ubuntu/.cwc-archive.json" not in members

    again = backend.archive_home(HomeArchive(emily.workspace.id, emily.workspace.instance_id,
                                             archive.s3_key.split("/")[1], "ubuntu", local_home=home))  # fmt: skip
    assert again.sha256 == archive.sha256  # deterministic: a retried archive of the same home is the same object

    runtime.sync()
    assert not home.exists()  # removed only now, its archive recorded


def test_a_restored_student_gets_the_archived_files_back_over_ssh(runtime, make_workspace, session, backend, course,
                                                                   jobs):  # fmt: skip
    make_policy(session, course)
    owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    emily = make_workspace()
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], WRITE)[0] == 0
    data = (runtime.rt.home(emily.workspace.instance_id) / "data.bin").read_bytes()
    _retire(session, emily.workspace.id)
    runtime.sync()
    session.get(CoursePolicy, course.id).closed_at = datetime.now(UTC)  # the term has closed
    session.commit()

    restore, _ = restore_student(session, course, RestoreRequest(emily.person.id, 7, Decimal(0)),
                                 actor_id=owner.id, now=datetime.now(UTC))  # fmt: skip
    session.commit()
    provision_workspace(restore.workspace_id)
    reconcile_workspaces()
    session.expire_all()
    fresh = session.get(Workspace, restore.workspace_id)
    assert fresh.state is WorkspaceState.RUNNING
    login = replace(emily, workspace=fresh).login
    status, out, _ = ssh_run(runtime.rt.port, login, [emily.key], "cat homework/hw1/model.py; sha256sum data.bin")
    assert status == 0 and out.splitlines() == ["w = [0.5, 1.5]", f"{hashlib.sha256(data).hexdigest()}  data.bin"]
    assert ssh_run(runtime.rt.port, login, [emily.key], "test -e .ssh/id_ed25519")[0] != 0
    session.expire_all()
    assert session.get(StudentRestore, restore.id).outcome == "restored"
