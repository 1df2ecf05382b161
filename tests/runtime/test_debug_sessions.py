"""Debug sessions through the runtime with real SSH: view-only cannot write, full control can, both end at expiry
or "End session", the banner names the session, and the asciicast recording in S3 replays what was typed."""

from __future__ import annotations

import asyncio
import time

import asyncssh
import pytest
from sqlalchemy import select

from classroom.models import AuditEvent, DebugRecording, DebugSession, Notification, OutboxEmail, StaffLevel
from classroom.services.debug_sessions import DebugRefused, end_expired, end_session, open_session, parse_request
from provisioning.gateway.connect import SHELL_COMMAND, TMUX_SESSION
from provisioning.runtime.recording import parse_cast
from provisioning.ssh_keys import generate_key_pair
from tests.runtime.conftest import ssh_refused, ssh_run, until_quiet
from tests.support.factories import make_person

TRAIN = "import torch\nbatch_size = 4096  # too big for this machine\n"


def _sophie_with_train_py(make_workspace, runtime):  # type: ignore[no-untyped-def]
    sophie = make_workspace("Sophie Martin")
    write = f"mkdir -p homework/hw1 && printf '%s' '{TRAIN}' > homework/hw1/train.py"
    assert ssh_run(runtime.rt.port, sophie.login, [sophie.key], write)[0] == 0
    return sophie


def _open(session, settings, course, ws, mode="view", full_reason=""):  # type: ignore[no-untyped-def]
    alex = session.scalar(select(DebugSession.staff_person_id).limit(1))
    staff = session.get(type(ws.person), alex) if alex else make_person(session, course, name="Alex Thompson",
                                                                         level=StaffLevel.HEAD_TA)  # fmt: skip
    private, public = generate_key_pair("alex")
    req = parse_request("Sophie's training crashes", mode, full_reason, "30")
    cert, ds = open_session(session, settings=settings, ws=ws.workspace, staff=staff, public_key=public, req=req)
    session.commit()
    return (asyncssh.import_private_key(private), asyncssh.import_certificate(cert)), ds


def _cast(backend, session, ds):  # type: ignore[no-untyped-def]
    rows = session.scalars(
        select(DebugRecording).where(DebugRecording.debug_session_id == ds.id).order_by(DebugRecording.id)
    )
    return [parse_cast(backend.get_private_object(r.s3_key)) for r in rows]


def test_view_only_session_reads_but_cannot_write_and_is_recorded(session, settings, course, backend, runtime,
                                                                  make_workspace):  # fmt: skip
    sophie = _sophie_with_train_py(make_workspace, runtime)
    creds, ds = _open(session, settings, course, sophie)
    code, out, err = ssh_run(runtime.rt.port, sophie.login, [creds], "cat homework/hw1/train.py")
    assert code == 0 and "batch_size = 4096" in out
    assert f"Debug session D{ds.id} on Sophie Martin's workspace" in err and "recorded" in err and "VIEW-ONLY" in err
    code, _, err = ssh_run(runtime.rt.port, sophie.login, [creds], "echo x >> homework/hw1/train.py")
    assert code != 0 and "Read-only file system" in err
    assert (runtime.rt.home(sophie.workspace.instance_id) / "homework/hw1/train.py").read_text() == TRAIN
    casts = _cast(backend, session, ds)
    assert len(casts) == 2 and casts[0].header["version"] == 2
    assert "cat homework/hw1/train.py" in casts[0].typed() and "batch_size = 4096" in casts[0].shown()
    assert "echo x >> homework/hw1/train.py" in casts[1].typed()
    start = session.scalar(select(AuditEvent).where(AuditEvent.action == "debug.session.start"))
    assert start.details["mode"] == "view" and start.details["session"] == f"D{ds.id}"
    told = session.scalar(select(Notification).where(Notification.person_id == sophie.person.id))
    assert "debug session" in told.subject and session.scalar(select(OutboxEmail).where(
        OutboxEmail.to_address == sophie.person.email)) is not None  # fmt: skip


def test_interactive_terminal_is_recorded_as_typed(session, settings, course, backend, runtime, make_workspace):
    sophie = _sophie_with_train_py(make_workspace, runtime)
    creds, ds = _open(session, settings, course, sophie)

    async def shell() -> str:
        async with asyncssh.connect("127.0.0.1", runtime.rt.port, username=sophie.login, client_keys=[creds],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            proc = await conn.create_process(term_type="xterm", term_size=(100, 30))
            proc.stdin.write("grep batch_size homework/hw1/train.py\n")
            proc.stdin.write("exit\n")
            out = await asyncio.wait_for(proc.stdout.read(), 30)
            await proc.wait()
            return str(out)

    shown = asyncio.run(shell())
    assert "batch_size = 4096" in shown and f"D{ds.id}" in shown
    (cast,) = _cast(backend, session, ds)
    assert cast.header["width"] == 100 and "grep batch_size homework/hw1/train.py" in cast.typed()
    assert "batch_size = 4096" in cast.shown()


def test_full_control_writes_and_both_are_refused_after_expiry(session, settings, course, runtime, clock,
                                                              make_workspace):  # fmt: skip
    sophie = _sophie_with_train_py(make_workspace, runtime)
    view, _ = _open(session, settings, course, sophie)
    with pytest.raises(DebugRefused):
        parse_request("help Sophie", "full", "", "30")
    full, ds = _open(session, settings, course, sophie, mode="full", full_reason="fix the batch size with her")
    code, _, err = ssh_run(runtime.rt.port, sophie.login, [full], "sed -i 's/4096/64/' homework/hw1/train.py")
    assert code == 0 and "FULL CONTROL" in err
    assert "batch_size = 64" in (runtime.rt.home(sophie.workspace.instance_id) / "homework/hw1/train.py").read_text()
    clock.shift = __import__("datetime").timedelta(minutes=31)
    assert ssh_refused(runtime.rt.port, sophie.login, [view]) and ssh_refused(runtime.rt.port, sophie.login, [full])
    assert end_expired(session, clock()) == 2
    session.commit()
    ends = session.scalars(select(AuditEvent).where(AuditEvent.action == "debug.session.end")).all()
    assert len(ends) == 2 and session.get(DebugSession, ds.id).ended_at is not None


def test_end_session_revokes_at_once_and_closes_the_open_connection(session, settings, course, runtime,
                                                                   make_workspace):  # fmt: skip
    sophie = _sophie_with_train_py(make_workspace, runtime)
    creds, ds = _open(session, settings, course, sophie)

    async def hold() -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess]:  # type: ignore[type-arg]
        conn = await asyncssh.connect("127.0.0.1", runtime.rt.port, username=sophie.login, client_keys=[creds],
                                      known_hosts=None, agent_path=None, config=None)  # fmt: skip
        return conn, await conn.create_process("sleep 60")

    conn, proc = runtime.call(hold())
    assert end_session(session, ds, actor_person_id=ds.staff_person_id, why="ended by staff")
    assert not end_session(session, ds, actor_person_id=ds.staff_person_id, why="again")  # idempotent
    session.commit()
    runtime.sync()
    runtime.call(asyncio.wait_for(conn.wait_closed(), 10))
    assert ssh_refused(runtime.rt.port, sophie.login, [creds])


def test_debug_sessions_never_reach_the_students_tmux(session, settings, course, runtime, make_workspace):
    """The student's tmux server runs their shells read-write: a view-only debug session that could reach its
    socket would type into them (`tmux send-keys`) and write to the home as the student. Neither mode sees it."""
    sophie = _sophie_with_train_py(make_workspace, runtime)
    home = runtime.rt.home(sophie.workspace.instance_id)

    async def student_terminal() -> None:  # what the browser terminal runs: the shell kept by tmux's server
        async with asyncssh.connect("127.0.0.1", runtime.rt.port, username=sophie.login, client_keys=[sophie.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            proc = await conn.create_process(SHELL_COMMAND, term_type="xterm", term_size=(80, 24))
            proc.stdin.write("echo ready-$((6*7))\n")
            assert "ready-42" in await until_quiet(proc, quiet=1.0)

    asyncio.run(student_terminal())
    for mode, reason in (("view", ""), ("full", "fix the batch size with her")):
        creds, _ = _open(session, settings, course, sophie, mode=mode, full_reason=reason)
        probe = (f"ls -d /tmp/tmux-1000 && echo SOCKET-VISIBLE; "
                 f"tmux send-keys -t {TMUX_SESSION} 'touch ~/typed_by_{mode}' Enter")  # fmt: skip
        code, out, _ = ssh_run(runtime.rt.port, sophie.login, [creds], probe)
        assert code != 0 and "SOCKET-VISIBLE" not in out
    code, _, _ = ssh_run(runtime.rt.port, sophie.login, [sophie.key],
                         f"tmux send-keys -t {TMUX_SESSION} 'touch ~/typed_by_sophie' Enter")  # fmt: skip
    assert code == 0
    for _ in range(50):  # the kept shell runs what the student's own tmux client sent
        if (home / "typed_by_sophie").exists():
            break
        time.sleep(0.1)
    assert (home / "typed_by_sophie").exists()
    assert not (home / "typed_by_view").exists() and not (home / "typed_by_full").exists()
