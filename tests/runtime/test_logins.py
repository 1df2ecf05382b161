"""Real SSH logins to local workspaces: students with their own keys only, sandboxes that see only their own."""

from __future__ import annotations

from tests.runtime.conftest import ssh_refused, ssh_run


def test_student_logs_in_with_own_key_into_a_sandbox_as_an_unprivileged_user(runtime, make_workspace):
    emily = make_workspace()
    status, out, err = ssh_run(runtime.rt.port, emily.login, [emily.key], "id -u; echo $HOME; hostname; pwd")
    assert status == 0, err
    assert out.split() == ["1000", "/home/ubuntu", emily.login, "/home/ubuntu"]


def test_another_students_key_is_refused_and_the_refusal_logged(runtime, make_workspace, caplog):
    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    assert ssh_refused(runtime.rt.port, emily.login, [david.key])
    assert ssh_refused(runtime.rt.port, "ws999999", [david.key])  # no such workspace: the same refusal
    refusals = [r.getMessage() for r in caplog.records if "ssh login refused" in r.getMessage()]
    assert any(emily.login in m and "not an active key" in m for m in refusals)
    assert any("no such workspace" in m for m in refusals)


def test_files_persist_in_the_home_and_other_workspaces_are_invisible(runtime, make_workspace):
    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    port = runtime.rt.port
    assert ssh_run(port, emily.login, [emily.key], "echo secret > notes.txt")[0] == 0
    status, out, _ = ssh_run(port, david.login, [david.key], "ls -a ~; ls /home; cat /etc/passwd; ls /etc")
    assert status == 0
    assert "notes.txt" not in out and "secret" not in out
    assert "root:x:0:0" in out and "ubuntu:x:1000" in out  # its own private /etc, not the host's
    assert str(runtime.rt.root) not in out
    status, out, _ = ssh_run(port, david.login, [david.key], f"ls {runtime.rt.root} 2>&1; ls /tmp/cwc-runtime* 2>&1")
    assert "No such file" in out
    assert ssh_run(port, emily.login, [emily.key], "cat notes.txt")[1] == "secret\n"


def test_materials_are_read_only_and_there_is_no_network(runtime, make_workspace):
    emily = make_workspace()
    status, out, _ = ssh_run(
        runtime.rt.port, emily.login, [emily.key],
        "ls -d /mnt/cs229-materials && touch /mnt/cs229-materials/x 2>&1; "
        "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), 2)' 2>&1 | tail -1",
    )  # fmt: skip
    assert "Read-only file system" in out
    assert "Network is unreachable" in out


def test_python_git_and_coreutils_work_inside(runtime, make_workspace):
    emily = make_workspace()
    script = "python3 -c 'print(6*7)' && git init -q repo && cd repo && echo hi > a && git add a && " \
             "git -c user.name=E -c user.email=e@x commit -qm first && git log --format=%s && wc -l a"  # fmt: skip
    status, out, err = ssh_run(runtime.rt.port, emily.login, [emily.key], script)
    assert status == 0, err
    assert out.split() == ["42", "first", "1", "a"]


def test_login_banner_says_what_is_recorded(runtime, make_workspace):
    import asyncio

    import asyncssh

    emily = make_workspace()
    banners: list[str] = []

    class Client(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    async def connect() -> None:
        conn, _ = await asyncssh.create_connection(Client, "127.0.0.1", runtime.rt.port, username=emily.login,
                                                   client_keys=[emily.key], known_hosts=None, agent_path=None,
                                                   config=None)  # fmt: skip
        conn.close()
        await conn.wait_closed()

    asyncio.run(connect())
    assert (
        len(banners) == 1
        and "What is recorded" in banners[0]
        and "does not collect activity" in " ".join(banners[0].split())
    )


def test_interactive_shell_with_a_terminal(runtime, make_workspace):
    import asyncio

    import asyncssh

    emily = make_workspace()

    async def shell() -> tuple[str, int | None]:
        async with asyncssh.connect("127.0.0.1", runtime.rt.port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            proc = await conn.create_process(term_type="xterm", term_size=(80, 24))
            proc.stdin.write("tty; echo answer=$((6*7)); exit 3\n")
            out = await asyncio.wait_for(proc.stdout.read(), 30)
            await proc.wait_closed()
            return out, proc.exit_status

    out, status = asyncio.run(shell())
    assert "answer=42" in out and "/dev/console" in out and status == 3  # bwrap shows the pty as the console


def test_the_students_own_key_is_refused_during_the_term_end_lockout(runtime, make_workspace, session, caplog):
    """On EC2 the lockout's heartbeat answer removes the student's keys; the runtime refuses them the same way
    while the workspace is locked out for its final archive or runs for its archive only."""
    from datetime import timedelta

    from classroom.db import utcnow

    emily = make_workspace()
    assert ssh_run(runtime.rt.port, emily.login, [emily.key], "true")[0] == 0
    emily.workspace.locked_out_at = utcnow()
    session.commit()
    assert ssh_refused(runtime.rt.port, emily.login, [emily.key])
    refusals = [r.getMessage() for r in caplog.records if "ssh login refused" in r.getMessage()]
    assert any(emily.login in m and "not an active key" in m for m in refusals)
    emily.workspace.locked_out_at, emily.workspace.archiving_until = None, utcnow() + timedelta(minutes=30)
    session.commit()
    assert ssh_refused(runtime.rt.port, emily.login, [emily.key])
