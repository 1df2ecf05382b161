"""The lifecycle acts on the runtime: a workspace is reachable only while its instance runs."""

from __future__ import annotations

import asyncio

import asyncssh

from tests.runtime.conftest import ssh_refused, ssh_run


def test_stop_ends_processes_and_refuses_logins_start_brings_the_home_back(runtime, make_workspace, backend):
    emily = make_workspace()
    port = runtime.rt.port
    assert ssh_run(port, emily.login, [emily.key], "echo draft > essay.txt")[0] == 0

    async def hold_a_session() -> str:
        async with asyncssh.connect("127.0.0.1", port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            proc = await conn.create_process("sleep 300")
            await asyncio.sleep(1.5)
            await asyncio.get_running_loop().run_in_executor(None, stop_and_sync)
            done = await asyncio.wait_for(proc.wait(check=False), 20)
            return f"ended: {done.exit_status} {done.exit_signal}"

    def stop_and_sync() -> None:
        backend.ec2.stop_instances(InstanceIds=[emily.workspace.instance_id])
        runtime.sync()

    ended = asyncio.run(_tolerate_disconnect(hold_a_session()))
    assert ended.startswith("ended") or ended == "disconnected"
    assert runtime.rt.procs.get(emily.workspace.instance_id, set()) == set()
    assert ssh_refused(port, emily.login, [emily.key])

    backend.ec2.start_instances(InstanceIds=[emily.workspace.instance_id])
    runtime.sync()
    status, out, _ = ssh_run(port, emily.login, [emily.key], "cat essay.txt")
    assert (status, out) == (0, "draft\n")


async def _tolerate_disconnect(coro):  # type: ignore[no-untyped-def]
    try:
        return await coro
    except (asyncssh.ConnectionLost, asyncssh.DisconnectError):
        return "disconnected"


def test_terminate_removes_the_home_once_archived_and_keeps_an_unarchived_one(runtime, make_workspace, backend,
                                                                              session):  # fmt: skip
    from classroom.models import WorkspaceArchive

    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    for ws in (emily, david):
        assert ssh_run(runtime.rt.port, ws.login, [ws.key], "echo x > f")[0] == 0
    backend.ec2.terminate_instances(InstanceIds=[emily.workspace.instance_id])
    runtime.sync()
    assert (runtime.rt.home(emily.workspace.instance_id) / "f").read_text() == "x\n"  # no archive: never deleted
    assert ssh_refused(runtime.rt.port, emily.login, [emily.key])
    session.add(WorkspaceArchive(workspace_id=emily.workspace.id, course_id=emily.workspace.course_id,
                                 s3_key="k", sha256="0" * 64, size_bytes=1, retain_days=365))  # fmt: skip
    session.commit()
    runtime.sync()
    assert not runtime.rt.home(emily.workspace.instance_id).exists()
    assert (runtime.rt.home(david.workspace.instance_id) / "f").read_text() == "x\n"


def test_a_revoked_key_is_refused_at_the_next_login(runtime, make_workspace, session):
    from provisioning.ssh_keys import active_keys, revoke_key

    emily = make_workspace()
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "true")[0] == 0
    (key,) = active_keys(session, emily.person.id)
    revoke_key(session, person_id=emily.person.id, key_id=key.id)
    session.commit()
    assert ssh_refused(runtime.rt.port, emily.login, [emily.key])


def test_a_restarted_runtime_serves_the_recorded_state(runtime, make_workspace, backend, engine, runtime_root, clock):
    from classroom.db import make_session_factory
    from provisioning.runtime.facts import FactsLoader
    from provisioning.runtime.host import RuntimeThread
    from provisioning.runtime.service import LocalRuntime

    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "echo kept > f")[0] == 0
    backend.ec2.stop_instances(InstanceIds=[david.workspace.instance_id])
    runtime.stop()  # killed mid-life; a new runtime over the same folder
    again = RuntimeThread(LocalRuntime(FactsLoader(make_session_factory(engine), backend), runtime_root, clock=clock),
                          asyncssh.generate_private_key("ssh-ed25519"))  # fmt: skip
    again.start()
    runtime.stop = again.stop  # the fixture's teardown stops the new one
    assert ssh_run(again.rt.port, emily.login, [emily.key], "cat f")[1] == "kept\n"
    assert ssh_refused(again.rt.port, david.login, [david.key])


def test_terminate_removes_the_home_when_staff_deleted_the_disk_without_an_archive(runtime, make_workspace, backend,
                                                                                   session, course):  # fmt: skip
    """ "Delete the disk without an archive" is staff's recorded choice that the home is lost: the runtime removes
    it as after an archive, instead of keeping it for ever."""
    from datetime import UTC, datetime

    from classroom.roles import StaffLevel
    from provisioning.archive_staff import confirm_phrase, delete_without_archive
    from tests.support.factories import make_person

    emily = make_workspace()
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "echo x > f")[0] == 0
    backend.ec2.terminate_instances(InstanceIds=[emily.workspace.instance_id])
    runtime.sync()
    home = runtime.rt.home(emily.workspace.instance_id)
    assert (home / "f").read_text() == "x\n"  # no archive, no choice yet: kept
    staff = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.INSTRUCTOR)
    ws = emily.workspace
    ws.archive_failed_at = datetime.now(UTC)
    delete_without_archive(session, ws, actor_person_id=staff.id, reason="the archive keeps failing, home is empty",
                           typed=confirm_phrase(ws.id), now=datetime.now(UTC))  # fmt: skip
    session.commit()
    runtime.sync()
    assert not home.exists()
