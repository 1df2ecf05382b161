"""Tickets at the gateway: an expired one is refused before the upgrade with nothing written, and a ticket is a bearer
token bound at issue, so nothing presented with it (query parameters, another person's session) changes what it
opens. Real parts as in test_terminal_gateway.py.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from sqlalchemy import func, select

from classroom.models import AuditEvent, StaffSshCert
from tests.runtime.conftest import ssh_run
from tests.runtime.test_terminal_gateway import ORIGIN, Term, gateway, ticket_for  # noqa: F401 - the fixture

TICKET_KEY = "cwc:term:ticket:"


def _written(session, redis, gw) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    """What a handshake could leave: shells, certificates, audit events, tickets."""
    session.expire_all()
    return (
        dict(gw.gateway.shells),
        session.scalar(select(func.count()).select_from(StaffSshCert)),
        session.scalar(select(func.count()).select_from(AuditEvent)),
        sorted(redis.scan_iter(TICKET_KEY + "*")),
    )


def test_an_expired_ticket_is_refused_and_nothing_is_written(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]  # noqa: F811
    emily = make_workspace("Emily Chen")
    token = ticket_for(redis, emily)
    assert redis.pexpire(TICKET_KEY + token, 1)  # its 30 s, run out
    deadline = time.monotonic() + 5
    while redis.exists(TICKET_KEY + token) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not redis.exists(TICKET_KEY + token)
    before = _written(session, redis, gateway)

    async def scene() -> int:
        async with aiohttp.ClientSession() as http:
            try:
                await http.ws_connect(f"http://127.0.0.1:{gateway.port}/terminal?ticket={token}",
                                      headers={"Origin": ORIGIN})  # fmt: skip
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            return 101

    assert asyncio.run(scene()) == 401
    assert _written(session, redis, gateway) == before and before[:2] == ({}, 0)


def test_a_ticket_opens_only_what_it_was_issued_for(gateway, make_workspace, redis, session, runtime):  # type: ignore[no-untyped-def]  # noqa: F811
    """Tickets are bearer tokens, bound at issue to person, course, workspace and mode: the gateway reads nothing
    else from the handshake (no cookie, no query parameter but the size), so Emily's ticket presented with David's
    workspace, person and mode in the query and David's cookies still opens Emily's own shell, as Emily."""
    emily = make_workspace("Emily Chen")
    david = make_workspace("David Kim", link="hw2")
    assert ssh_run(runtime.rt.port, david.login, [david.key], "echo davids-secret > mine.txt")[0] == 0
    token = ticket_for(redis, emily)
    forged = (f"ticket={token}&workspace_id={david.workspace.id}&ws={david.workspace.id}"
              f"&person_id={david.person.id}&owner_person_id={david.person.id}&mode=watch&cols=90&rows=20")  # fmt: skip

    async def scene() -> str:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://127.0.0.1:{gateway.port}/terminal?{forged}",
                                       headers={"Origin": ORIGIN, "Cookie": f"session=david-{david.person.id}",
                                                "Authorization": "Bearer davids-token"})  # fmt: skip
            term = Term(ws)
            await term.type("cat mine.txt 2>&1; echo whoami-$((6*7))\n")
            assert await term.read_until("whoami-42")
            return term.screen

    screen = asyncio.run(scene())
    assert "davids-secret" not in screen and "No such file" in screen  # Emily's home, not David's
    assert set(gateway.gateway.shells) == {(emily.workspace.id, emily.person.id)}
    certs = session.scalars(select(StaffSshCert)).all()
    assert [(c.workspace_id, c.key_id.split(":")[1]) for c in certs] == [(emily.workspace.id, str(emily.person.id))]
