"""200 handshakes at once with valid tickets for one person: the per-person and per-shell limits hold, every
handshake is answered (no 5xx), and nothing leaks: certificates only for the shells opened, every ticket consumed,
and once the sockets close and the reconnect wait passes, no shell and no SSH connection left.
Real parts as in test_terminal_gateway.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp
from sqlalchemy import func, select

from classroom.models import StaffSshCert
from provisioning.gateway.connect import Target
from provisioning.gateway.host import GatewayThread, build_gateway
from provisioning.gateway.hub import Limits
from tests.runtime.test_terminal_gateway import ORIGIN, ticket_for
from tests.runtime.test_terminal_limits import Clock, until

BURST = 200


def test_a_burst_of_valid_tickets_for_one_person_opens_only_her_limit(settings, runtime, make_workspace, redis,
                                                                      session):  # fmt: skip
    limits = Limits(per_person=2, sockets_per_shell=3, grace_s=30)
    clock = Clock()
    gw = build_gateway(replace(settings, runtime_ssh_port=runtime.rt.port), limits=limits, origins={ORIGIN},
                       target=Target("127.0.0.1", runtime.rt.port, host_key=runtime.key))  # fmt: skip
    gw.clock = clock
    gateway = GatewayThread(gw)
    port = gateway.start()
    emily = make_workspace("Emily Chen")
    others = [make_workspace(f"Emily Chen {n}", link=f"hw{n}") for n in (2, 3)]
    for extra in others:  # three workspaces of one person: more than her two shells
        extra.workspace.person_id, extra.person = emily.person.id, emily.person
    session.commit()
    workspaces = [emily, *others]
    tickets = [ticket_for(redis, workspaces[n % 3]) for n in range(BURST)]

    async def one(http: aiohttp.ClientSession, ticket: str) -> tuple[int, str, aiohttp.ClientWebSocketResponse | None]:
        """(status, first control message's type, the socket if attached)."""
        try:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/terminal?ticket={ticket}", headers={"Origin": ORIGIN})
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, "", None
        while True:  # an attached socket is told who is watching; a refused one gets an error
            msg = await ws.receive(timeout=60)
            if msg.type == aiohttp.WSMsgType.TEXT:
                kind = json.loads(msg.data)["type"]
                return 101, kind, (ws if kind == "watchers" else None)
            if msg.type != aiohttp.WSMsgType.BINARY:
                return 101, "socket-closed", None

    async def scene() -> tuple[list[tuple[int, str]], int, int]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            answers = await asyncio.gather(*(one(http, t) for t in tickets))
            shells, owners = len(gw.shells), sum(len(s.owners) for s in gw.shells.values())
            for _, _, ws in answers:
                if ws is not None:
                    await ws.close()
        return [(status, kind) for status, kind, _ in answers], shells, owners

    try:
        answers, shells, owners = asyncio.run(scene())
        statuses = {status for status, _ in answers}
        kinds = sorted({kind for _, kind in answers})
        attached = sum(1 for _, kind in answers if kind == "watchers")
        assert statuses == {101}, statuses  # every ticket valid: each handshake answered, none failed
        assert kinds == ["error", "watchers"] and attached == 6 == owners  # 2 shells x 3 tabs
        assert shells == 2
        assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 2  # one per shell, none leaked
        assert redis.keys("cwc:term:ticket:*") == []  # every ticket consumed
        assert asyncio.run(until(lambda: all(s.detached_at is not None for s in gw.shells.values())))
        clock.advance(31)  # every socket closed: after the reconnect wait the shells end
        gateway.call(gw.sweep())
        assert gw.shells == {}
        assert asyncio.run(until(lambda: not any(runtime.rt.servers.get(w.workspace.instance_id) for w in workspaces)))
    finally:
        gateway.stop()
