"""Staff messages appear at the student's next SSH login (the local runtime), and only the student's own."""

from __future__ import annotations

import asyncio

import asyncssh
from sqlalchemy import select

from classroom.models import StaffMessage
from classroom.roles import StaffLevel
from classroom.services.messages import Draft, send_message
from tests.support.factories import make_person


async def _login_shell(port: int, login: str, key: object) -> str:
    """An interactive login (a pty, no command), as `ssh host` opens it: what is shown before `exit`."""
    async with asyncssh.connect("127.0.0.1", port, username=login, client_keys=[key], known_hosts=None,
                                agent_path=None, config=None, connect_timeout=20) as conn:  # fmt: skip
        proc = await conn.create_process(term_type="xterm", encoding="utf-8")
        proc.stdin.write("echo READY; exit\n")
        out = await asyncio.wait_for(proc.stdout.read(), 30)
        await proc.wait()
        return out


def test_sophie_sees_alexs_unread_message_at_her_next_login_and_david_does_not(runtime, make_workspace, session,
                                                                                course):  # fmt: skip
    sophie, david = make_workspace("Sophie Martin"), make_workspace("David Kim", link="hw2")
    alex = make_person(session, course, level=StaffLevel.HEAD_TA, name="Alex Thompson")
    draft = Draft("Batch size in train.py", "Use 64, not 4096.", "homework/hw3/train.py", 12, "k1")
    send_message(session, course.id, author_id=alex.id, student_id=sophie.person.id, draft=draft)
    session.commit()
    shown = asyncio.run(_login_shell(runtime.rt.port, sophie.login, sophie.key))
    assert "1 unread message" in shown and "Batch size in train.py (from Alex Thompson)" in shown and "READY" in shown
    assert "unread message" not in asyncio.run(_login_shell(runtime.rt.port, david.login, david.key))
    session.expire_all()
    msg = session.scalar(select(StaffMessage))
    assert msg.shown_at_login_at is not None and msg.read_at is None  # shown, not yet opened in the tool
    # a command (scp, an IDE's exec) gets no banner in its output
    from tests.runtime.conftest import ssh_run

    assert ssh_run(runtime.rt.port, sophie.login, [sophie.key], "echo hi")[1] == "hi\n"
