"""Commands typed in an interactive shell (real SSH with a terminal, a real bwrap sandbox, bash's own history)
become `command` events only when the course records them; exec sessions and SFTP are never recorded; secrets
are redacted before a line leaves the workspace."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncssh

from classroom.integrity.services import own_record
from classroom.models import IntegritySettings
from provisioning.agent.cwc_agent import event
from provisioning.runtime.activity import WorkspaceActivity
from tests.runtime.conftest import ssh_run, until_quiet
from tests.runtime.test_activity import _collect, _events, _with_token, reporting  # noqa: F401 - the fixture
from tests.support.budget import make_policy

TYPED = [
    "mkdir -p homework/hw5 && cd homework/hw5",
    "echo 'print(5)' > solution.py",
    "export GITHUB_TOKEN=ghp_s3cretvalue && echo set",
    "git clone https://emily:hunter2@example.invalid/repo.git 2>/dev/null; true",
]


def shell(port: int, login: str, key: asyncssh.SSHKey, lines: list[str]) -> str:
    """An interactive login shell with a terminal: type each line, then exit; what the terminal showed."""

    async def go() -> str:
        async with asyncssh.connect("127.0.0.1", port, username=login, client_keys=[key], known_hosts=None,
                                    agent_path=None, config=None, connect_timeout=20) as conn:  # fmt: skip
            proc = await conn.create_process(term_type="xterm", term_size=(120, 40))
            shown = ""
            for line in [*lines, "exit"]:
                proc.stdin.write(line + "\n")
                shown += await until_quiet(proc)
            await asyncio.wait_for(proc.wait(), 30)
            return shown + str(await proc.stdout.read())

    return asyncio.run(go())


def _record_commands(session, course, on: bool) -> None:  # type: ignore[no-untyped-def]
    make_policy(session, course, integrity={"plagiarism_support": True})
    session.add(IntegritySettings(course_id=course.id, campus_ranges=[], record_commands=on,
                                  snapshot_path="homework/{assignment}", similarity_threshold=60))  # fmt: skip
    session.commit()


def test_typed_commands_become_events_of_their_session_and_exec_is_not_recorded(
    reporting,  # noqa: F811
    make_workspace,
    session,
    course,
):
    _record_commands(session, course, True)
    emily = make_workspace()
    _with_token(session, emily)
    port = reporting.rt.port
    reporting.sync()  # the runtime learns that this course records commands
    assert ssh_run(port, emily.login, [emily.key], "echo exec-not-typed > exec.txt")[0] == 0
    shell(port, emily.login, emily.key, TYPED)
    assert ssh_run(port, emily.login, [emily.key], "cat homework/hw5/solution.py")[1] == "print(5)\n"
    _collect(reporting)
    events = _events(session, emily.workspace.id)
    commands = sorted((e for e in events if e.kind == "command"), key=lambda e: e.details["n"])
    assert [c.details["line"] for c in commands] == [
        "mkdir -p homework/hw5 && cd homework/hw5",
        "echo 'print(5)' > solution.py",
        "export GITHUB_TOKEN=[redacted] && echo set",
        "git clone https://[redacted]@example.invalid/repo.git 2>/dev/null; true",
    ]
    shells = [e.details["session"] for e in sorted(events, key=lambda e: e.id) if e.kind == "ssh_login"]
    assert len(shells) == 3 and {c.details["session"] for c in commands} == {shells[1]}  # the typed session's
    assert all(c.details["cwd"].endswith("/homework/hw5") for c in commands)  # the folder at the next prompt
    assert [c.details["exit"] for c in commands] == [0, 0, 0, 0]
    assert {c.details["who"] for c in commands} == {emily_login_who(events)}
    assert not any("exec-not-typed" in c.details["line"] or "cat " in c.details["line"] for c in commands)
    log = reporting.rt.root / "tools" / emily.workspace.instance_id / "commands.jsonl"
    assert "ghp_s3cretvalue" in log.read_text()  # the shell's own record, as in ~/.bash_history; never sent
    assert all("s3cret" not in str(e.details) and "hunter2" not in str(e.details) for e in events)
    now = datetime.now(UTC)
    evidence = own_record(session, course.id, emily.person.id, now - timedelta(hours=1), now + timedelta(hours=1))
    assert [c.details["line"] for c in evidence.commands] == [c.details["line"] for c in commands]
    before = len(events)
    _collect(reporting)  # read once: nothing new
    assert len(_events(session, emily.workspace.id)) == before


def test_nothing_is_recorded_when_the_course_does_not_record_commands(reporting, make_workspace, session, course):  # noqa: F811
    _record_commands(session, course, False)
    emily = make_workspace()
    _with_token(session, emily)
    reporting.sync()
    shown = shell(reporting.rt.port, emily.login, emily.key, ["echo typed-but-not-recorded > f.txt"])
    assert "typed-but-not-recorded" in shown
    etc = reporting.rt.root / "etc" / emily.workspace.instance_id
    assert not (etc / "profile").exists() and not (etc / "bash.bashrc").exists()  # no hook in the shell
    assert not (reporting.rt.root / "tools" / emily.workspace.instance_id / "commands.jsonl").exists()
    _collect(reporting)
    events = _events(session, emily.workspace.id)
    assert "ssh_login" in {e.kind for e in events}  # activity is collected, typed commands are not
    assert [e for e in events if e.kind == "command"] == []


def test_turning_recording_off_and_on_applies_to_a_shell_already_open(reporting, make_workspace, session, course):  # noqa: F811
    _record_commands(session, course, True)
    emily = make_workspace()
    _with_token(session, emily)
    reporting.sync()
    port, log = reporting.rt.port, reporting.rt.root / "tools" / emily.workspace.instance_id / "commands.jsonl"

    def switch(on: bool) -> None:
        _collect(reporting)  # what was typed so far is sent under the setting it was typed under
        session.get(IntegritySettings, course.id).record_commands = on
        session.commit()
        _collect(reporting)  # the runtime's minute: arms or removes the log, sends what was typed

    async def go() -> None:
        async with asyncssh.connect("127.0.0.1", port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            proc = await conn.create_process(term_type="xterm")
            loop = asyncio.get_running_loop()
            for line, then in (("echo while-on", False), ("echo while-off", True), ("echo on-again", None)):
                proc.stdin.write(line + "\n")
                await until_quiet(proc)
                if then is not None:
                    await loop.run_in_executor(None, switch, then)
                    assert log.exists() is then
            proc.stdin.write("exit\n")
            await asyncio.wait_for(proc.wait(), 30)

    asyncio.run(go())
    _collect(reporting)
    lines = [e.details["line"] for e in _events(session, emily.workspace.id) if e.kind == "command"]
    assert sorted(lines) == ["echo on-again", "echo while-on"]


def emily_login_who(events) -> str:  # type: ignore[no-untyped-def]
    (who,) = {e.details["who"] for e in events if e.kind == "ssh_login"}
    assert who.startswith("student key SHA256:")
    return str(who)


def test_commands_typed_in_a_staff_members_session_are_not_the_students(tmp_path):
    """A staff member's certificate login (a debug session) is recorded on its own; what they type there is not
    sent as the student's typed commands."""
    act = WorkspaceActivity(tmp_path / "agent")
    act.note("ssh_login", {"who": "student key SHA256:abc", "session": "s1"}, 1_800_000_000)
    act.note("ssh_login", {"who": "staff certificate 'staff:3:Alex Rivera session:7'", "session": "s2"}, 1_800_000_001)
    typed = [event("command", {"line": "ls", "session": s}, 1_800_000_002) for s in ("s1", "s2", "s3")]
    kept = act._with_who(typed)  # noqa: SLF001 - the step the scan applies to the sandbox's events
    assert [(e["details"]["session"], e["details"].get("who")) for e in kept] == [
        ("s1", "student key SHA256:abc"),
        ("s3", None),  # a session the runtime did not see: kept, nobody named
    ]
