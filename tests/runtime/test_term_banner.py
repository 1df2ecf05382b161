"""The local runtime's SSH login banner carries the term-end warning on the term's last day (real asyncssh)."""

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
        conn, _ = await asyncssh.create_connection(Client, "127.0.0.1", port, username=login, client_keys=[key],
                                                   known_hosts=None, agent_path=None, config=None)  # fmt: skip
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
