"""The browser terminal is an interactive session too: what the student types through the gateway (a real
WebSocket, the gateway's course-CA certificate, the runtime's SSH server, a bwrap sandbox) becomes `command` events
when the course records typed commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import aiohttp
import pytest

from provisioning.gateway.connect import Target
from provisioning.gateway.host import GatewayThread, build_gateway
from provisioning.gateway.hub import Limits
from tests.runtime.test_activity import _collect, _events, _with_token, reporting  # noqa: F401 - the fixture
from tests.runtime.test_terminal_gateway import ORIGIN, _open, ticket_for
from tests.runtime.test_typed_commands import _record_commands


@pytest.fixture
def gateway(settings, reporting) -> Iterator[GatewayThread]:  # type: ignore[no-untyped-def]  # noqa: F811
    cfg = replace(settings, runtime_ssh_port=reporting.rt.port)
    gw = build_gateway(cfg, limits=Limits(per_person=2, grace_s=30), origins={ORIGIN},
                       target=Target("127.0.0.1", reporting.rt.port, host_key=reporting.key))  # fmt: skip
    thread = GatewayThread(gw)
    thread.port = thread.start()  # type: ignore[attr-defined]
    yield thread
    thread.stop()


def test_lines_typed_in_the_browser_terminal_are_recorded(gateway, reporting, make_workspace, redis, session, course):  # type: ignore[no-untyped-def]  # noqa: F811
    _record_commands(session, course, True)
    emily = make_workspace("Emily Chen")
    _with_token(session, emily)
    reporting.sync()

    async def scene() -> bool:
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            await term.type("python3 -c 'print(6*7)'\n")
            seen = await term.read_until(r"[\r\n]42\r?\n")
            await term.type("echo done-$((40+2))\n")
            return seen and await term.read_until(r"[\r\n]done-42\r?\n")

    assert asyncio.run(scene())
    log = reporting.rt.root / "tools" / emily.workspace.instance_id / "commands.jsonl"
    for _ in range(100):  # the shell writes the last line at its next prompt, just after the output
        if log.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    _collect(reporting)
    events = _events(session, emily.workspace.id)
    commands = sorted((e for e in events if e.kind == "command"), key=lambda e: e.details["n"])
    assert [c.details["line"] for c in commands] == ["python3 -c 'print(6*7)'", "echo done-$((40+2))"]
    (login,) = [e.details for e in events if e.kind == "ssh_login"]
    assert {(c.details["session"], c.details["who"]) for c in commands} == {(login["session"], login["who"])}
    assert login["who"].startswith("staff certificate 'terminal:")  # the gateway's certificate for her terminal
