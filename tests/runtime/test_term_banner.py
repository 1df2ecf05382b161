"""The local runtime's SSH login banner carries the term-end warning on the term's last day (real asyncssh), and only
the workspace's proven key holder sees it: another key, or a login name that does not exist, gets no banner at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncssh

from tests.support.budget import make_policy


def _banners(port: int, login: str, key: object) -> list[str]:
    banners: list[str] = []

    class Client(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    async def connect() -> None:
        try:
            conn, _ = await asyncssh.create_connection(Client, "127.0.0.1", port, username=login, client_keys=[key],
                                                       known_hosts=None, agent_path=None, config=None)  # fmt: skip
        except asyncssh.PermissionDenied:
            return
        conn.close()
        await conn.wait_closed()

    asyncio.run(connect())
    return banners


def test_the_login_banner_warns_on_the_last_day_of_the_term(runtime, make_workspace, course, session):
    make_policy(session, course)
    course.time_zone, course.term_end = "UTC", datetime.now(UTC).date() + timedelta(days=3)
    session.commit()
    emily = make_workspace()
    (before,) = _banners(runtime.rt.port, emily.login, emily.key)
    assert "What is recorded" in before and "The term ends" not in before
    course.term_end = datetime.now(UTC).date()  # the term ends tonight: within 24 hours
    session.commit()
    (banner,) = _banners(runtime.rt.port, emily.login, emily.key)
    assert "What is recorded" in banner and "The term ends in" in banner and "$0.00 spent of $24.00" in banner


def test_a_stranger_gets_no_banner_neither_spend_nor_settings(runtime, make_workspace, course, session):
    make_policy(session, course)
    course.time_zone, course.term_end = "UTC", datetime.now(UTC).date()  # the warning (with the spend) is on
    session.commit()
    emily, david = make_workspace(), make_workspace("David Kim", "hw2")
    (own,) = _banners(runtime.rt.port, emily.login, emily.key)
    assert "$0.00 spent of $24.00" in own
    assert _banners(runtime.rt.port, emily.login, david.key) == []  # David's key on Emily's login
    assert _banners(runtime.rt.port, "ws999999", david.key) == []  # no such workspace: the same nothing
