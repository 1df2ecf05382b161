"""The gateway's limits through the real runtime: idle disconnect, maximum length, the reconnect wait, tabs and
watchers per shell, a slow watcher dropped, and a workspace stopped under an open terminal.

Real parts as in test_terminal_gateway.py (the gateway on a thread, aiohttp WebSockets, course-CA certificates, the
runtime's SSH server and bwrap sandboxes). Time limits use short `Limits` and the gateway's clock, which the test
moves forward before running one sweep (what the sweeper does every second): no test waits for a limit to pass.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import aiohttp
import pytest
from sqlalchemy import func, select

from classroom.models import StaffSshCert
from classroom.services.terminal import Mode, Share, start_sharing
from provisioning.gateway.connect import Target
from provisioning.gateway.host import GatewayThread, build_gateway
from provisioning.gateway.hub import Limits
from tests.runtime.test_terminal_gateway import ORIGIN, Term, _open, ticket_for


class Clock:
    """The gateway's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def gw_clock() -> Clock:
    return Clock()


@pytest.fixture
def start_gateway(settings, runtime, gw_clock) -> Iterator[Callable[[Limits], GatewayThread]]:  # type: ignore[no-untyped-def]
    started: list[GatewayThread] = []

    def start(limits: Limits) -> GatewayThread:
        cfg = replace(settings, runtime_ssh_port=runtime.rt.port)
        gw = build_gateway(cfg, limits=limits, origins={ORIGIN},
                           target=Target("127.0.0.1", runtime.rt.port, host_key=runtime.key))  # fmt: skip
        gw.clock = gw_clock
        thread = GatewayThread(gw)
        thread.port = thread.start()  # type: ignore[attr-defined]
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


async def sweep(gateway: GatewayThread) -> None:
    """One pass of the gateway's sweeper, on its own loop."""
    await asyncio.to_thread(gateway.call, gateway.gateway.sweep())


async def until(condition: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def ssh_connections(runtime, lw) -> int:  # type: ignore[no-untyped-def]
    """The runtime's open SSH connections into this workspace."""
    return len(runtime.rt.servers.get(lw.workspace.instance_id, set()))


async def echo(term: Term, tag: str) -> bool:
    """Type a command whose output (not its echo) proves the shell ran it."""
    await term.type(f"echo {tag}-$((40+2))\n")
    return await term.read_until(f"{tag}-42")


def test_a_shell_without_typing_is_closed_after_idle_s_and_typing_keeps_it(start_gateway, gw_clock, make_workspace,
                                                                            redis, runtime):  # fmt: skip
    gateway = start_gateway(Limits(idle_s=60, max_s=10_000, grace_s=10_000))
    emily = make_workspace("Emily Chen")
    key = (emily.workspace.id, emily.person.id)

    async def scene() -> tuple[bool, bool, dict]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            assert await echo(term, "first")
            gw_clock.advance(59)
            await sweep(gateway)
            assert await echo(term, "typed")  # at 59 s: still open, and typing starts the wait again
            gw_clock.advance(59)
            await sweep(gateway)
            alive = key in gateway.gateway.shells and await echo(term, "later")
            gw_clock.advance(61)  # 61 s after the last keystroke
            await sweep(gateway)
            closed = await term.control("closed")
            return alive, key not in gateway.gateway.shells, closed

    alive, gone, closed = asyncio.run(scene())
    assert alive and gone
    assert "without typing" in closed["message"]
    assert asyncio.run(until(lambda: ssh_connections(runtime, emily) == 0))  # the SSH connection went too


def test_a_shell_ends_at_max_s_even_while_typing(start_gateway, gw_clock, make_workspace, redis, runtime):  # type: ignore[no-untyped-def]
    gateway = start_gateway(Limits(idle_s=60, max_s=100, grace_s=10_000))
    emily = make_workspace("Emily Chen")
    key = (emily.workspace.id, emily.person.id)

    async def scene() -> tuple[bool, dict]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            assert await echo(term, "open")  # the shell is open (the handshake answers before the shell)
            for step, tag in ((50, "at-50"), (49, "at-99")):
                gw_clock.advance(step)
                await sweep(gateway)
                assert key in gateway.gateway.shells and await echo(term, tag)
            gw_clock.advance(1)  # 100 s since it opened, 1 s since the last keystroke
            await sweep(gateway)
            return key in gateway.gateway.shells, await term.control("closed")

    still_there, closed = asyncio.run(scene())
    assert not still_there and "maximum length" in closed["message"]
    assert asyncio.run(until(lambda: ssh_connections(runtime, emily) == 0))


def test_a_detached_shell_waits_grace_s_for_a_reconnect_then_ends(start_gateway, gw_clock, make_workspace, redis,
                                                                  runtime, session):  # fmt: skip
    gateway = start_gateway(Limits(grace_s=30))
    emily = make_workspace("Emily Chen")
    key = (emily.workspace.id, emily.person.id)
    shells = gateway.gateway.shells

    async def scene() -> tuple[bool, bool, bool]:
        async with aiohttp.ClientSession() as http:
            first = await _open(http, gateway.port, ticket_for(redis, emily))
            assert await echo(first, "first")
            kept = shells[key]
            await first.ws.close()  # the browser went away
            assert await until(lambda: kept.detached_at is not None)
            gw_clock.advance(29)
            await sweep(gateway)
            waiting = shells.get(key) is kept and not kept.ended
            gw_clock.advance(2)  # 31 s without a browser
            await sweep(gateway)
            ended = key not in shells and kept.ended
            closed = await until(lambda: ssh_connections(runtime, emily) == 0)
            second = await _open(http, gateway.port, ticket_for(redis, emily))  # a new shell now, not the old one
            assert await echo(second, "again")
            fresh = shells.get(key) is not None and shells[key] is not kept
            return waiting, ended and closed, fresh

    assert asyncio.run(scene()) == (True, True, True)
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 2  # one certificate per SSH login


def test_tabs_per_shell_are_capped(start_gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    gateway = start_gateway(Limits(sockets_per_shell=2))
    emily = make_workspace("Emily Chen")

    async def scene() -> tuple[dict, bool, int]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            tabs = [await _open(http, gateway.port, ticket_for(redis, emily)) for _ in range(2)]
            assert await echo(tabs[0], "tab")
            third = await _open(http, gateway.port, ticket_for(redis, emily))
            refusal = await third.control("error")
            shell = gateway.gateway.shells[(emily.workspace.id, emily.person.id)]
            await tabs[1].ws.close()
            assert await until(lambda: len(shell.owners) == 1)
            again = await _open(http, gateway.port, ticket_for(redis, emily))  # a tab closed: room for one
            return refusal, await echo(again, "room"), len(shell.owners)

    refusal, reopened, owners = asyncio.run(scene())
    assert "too many tabs" in refusal["message"] and reopened and owners == 2
    assert len(gateway.gateway.shells) == 1 and session.scalar(select(func.count()).select_from(StaffSshCert)) == 1


def test_watchers_per_shell_are_capped(start_gateway, make_workspace, redis):  # type: ignore[no-untyped-def]
    gateway = start_gateway(Limits(watchers_per_shell=1))
    sophie = make_workspace("Sophie Martin")
    alex = make_workspace("Alex Thompson", link="alex-ws").person
    priya = make_workspace("Priya Patel", link="priya-ws").person
    start_sharing(redis, Share(sophie.workspace.id, sophie.person.id, sophie.person.name, sophie.workspace.course_id))

    async def scene() -> tuple[dict, dict, list[str]]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            owner = await _open(http, gateway.port, ticket_for(redis, sophie))
            assert await echo(owner, "ready")
            first = await _open(http, gateway.port, ticket_for(redis, sophie, mode=Mode.WATCH, person=alex, staff=True))
            notice = await first.control("notice")
            second = await _open(http, gateway.port, ticket_for(redis, sophie, mode=Mode.WATCH, person=priya,
                                                                  staff=True))  # fmt: skip
            refusal = await second.control("error")
            watching = await owner.control("watchers", where=lambda c: c["names"])
            return notice, refusal, watching["names"]

    notice, refusal, names = asyncio.run(scene())
    assert "View only" in notice["message"] and "Too many people are watching" in refusal["message"]
    assert names == ["Alex Thompson"]


def _silent_watcher(port: int, ticket: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /terminal?ticket={ticket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {ORIGIN}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


FLOOD = (  # ~40 MB of screen output, paced so the owner's reader keeps up on a busy machine
    "python3 -c \"import sys, time\nfor i in range(2500):\n sys.stdout.write('x' * 16000 + chr(10))"
    "\n sys.stdout.flush()\n time.sleep(0.002)\nprint('flood', 'done')\"\n"
)


def test_a_watcher_that_falls_behind_is_dropped_and_the_owner_goes_on(start_gateway, make_workspace, redis):  # type: ignore[no-untyped-def]
    gateway = start_gateway(Limits())
    sophie = make_workspace("Sophie Martin")
    alex = make_workspace("Alex Thompson", link="alex-ws").person
    start_sharing(redis, Share(sophie.workspace.id, sophie.person.id, sophie.person.name, sophie.workspace.course_id))
    key = (sophie.workspace.id, sophie.person.id)

    async def read_tail(term: Term, pattern: str, timeout: float = 120) -> tuple[bool, list[list[str]]]:
        """Read the owner's socket, keeping only the screen's tail (the flood is large); the watcher lists seen."""
        tail, lists = "", []
        deadline = time.monotonic() + timeout
        while pattern not in tail and time.monotonic() < deadline:
            msg = await term.ws.receive(timeout=deadline - time.monotonic())
            if msg.type == aiohttp.WSMsgType.BINARY:
                tail = (tail + msg.data.decode(errors="replace"))[-4096:]
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                lists += [data["names"]] if data["type"] == "watchers" else []
            else:
                break
        return pattern in tail, lists

    async def scene() -> tuple[bool, list[list[str]], bool, bool]:
        async with aiohttp.ClientSession() as http:
            owner = await _open(http, gateway.port, ticket_for(redis, sophie))
            assert await echo(owner, "ready")
            token = ticket_for(redis, sophie, mode=Mode.WATCH, person=alex, staff=True)
            slow = await asyncio.to_thread(_silent_watcher, gateway.port, token)
            shell = gateway.gateway.shells[key]
            assert await until(lambda: len(shell.watchers) == 1)
            flooded, lists, rounds = True, [], 0
            while shell.watchers and flooded and rounds < 8:  # tmux sends screens, not every byte: a busy machine
                await owner.type(FLOOD)  # may need more than one flood before the watcher's queue fills
                flooded, seen = await read_tail(owner, "flood done")
                lists, rounds = lists + seen, rounds + 1
            dropped = not shell.watchers
            await owner.type("echo after-$((1+1))\n")
            after, _ = await read_tail(owner, "after-2", timeout=20)
            slow.close()
            return flooded and after, lists, dropped, not shell.ended and len(shell.owners) == 1

    owner_went_on, lists, dropped, owner_kept = asyncio.run(scene())
    assert dropped, f"the silent watcher was never dropped: {lists}"
    assert owner_went_on and owner_kept, "the owner's terminal stalled or ended with the watcher"
    assert ["Alex Thompson"] in lists and lists[-1] == []  # the owner saw him come and go


def test_a_workspace_stopped_under_the_terminal_closes_it_with_a_message(start_gateway, make_workspace, redis,
                                                                         runtime, backend):  # fmt: skip
    gateway = start_gateway(Limits())
    emily = make_workspace("Emily Chen")
    key = (emily.workspace.id, emily.person.id)

    async def scene() -> tuple[dict, bool]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            assert await echo(term, "running")

            def stop() -> None:  # the instance stops; the runtime's next sync ends the workspace's sessions
                backend.ec2.stop_instances(InstanceIds=[emily.workspace.instance_id])
                runtime.sync()

            await asyncio.to_thread(stop)
            closed = await term.control("closed", timeout=20)
            await sweep(gateway)
            return closed, key not in gateway.gateway.shells

    closed, removed = asyncio.run(scene())
    assert "workspace stopped" in closed["message"] and removed
    assert ssh_connections(runtime, emily) == 0
