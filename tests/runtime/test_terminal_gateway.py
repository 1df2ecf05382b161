"""The browser terminal gateway through the real runtime: tickets, origin, the shell, sharing, limits, reconnects.

Real parts: the gateway (aiohttp) on a thread, a real WebSocket client, a course-CA certificate per connection,
the runtime's SSH server and a bwrap sandbox, Redis for tickets and shares, PostgreSQL for the workspace rows.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import replace

import aiohttp
import pytest
from sqlalchemy import func, select

from classroom.budget.enforcement import BUDGET_USED_UP, Plan, Stop
from classroom.db import utcnow
from classroom.models import AuditEvent, StaffSshCert
from classroom.services.enforcement import SweepResult, _apply_stops
from classroom.services.terminal import Mode, Share, Ticket, issue_ticket, start_sharing, stop_sharing
from classroom.workspaces.archive_rules import LOCKED_FOR_ARCHIVE
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.gateway.connect import Target
from provisioning.gateway.host import GatewayThread, build_gateway
from provisioning.gateway.hub import Limits

ORIGIN = "http://localhost"  # the test app's base URL
# terminal control sequences (tmux redraws the screen with them): read_until matches the text without them
ESCAPES = re.compile(r"\x1b\[[0-9;?>=]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


@pytest.fixture
def gateway(settings, runtime) -> Iterator[GatewayThread]:  # type: ignore[no-untyped-def]
    cfg = replace(settings, runtime_ssh_port=runtime.rt.port)
    gw = build_gateway(cfg, limits=Limits(per_person=2, grace_s=30), origins={ORIGIN},
                       target=Target("127.0.0.1", runtime.rt.port, host_key=runtime.key))  # fmt: skip
    thread = GatewayThread(gw)
    thread.port = thread.start()  # type: ignore[attr-defined]
    yield thread
    thread.stop()


def ticket_for(redis, lw, *, mode=Mode.SHELL, person=None, staff=False) -> str:  # type: ignore[no-untyped-def]
    who = person or lw.person
    return issue_ticket(redis, Ticket(person_id=who.id, person_name=who.name, course_id=lw.workspace.course_id,
                                      workspace_id=lw.workspace.id, owner_person_id=lw.person.id, mode=mode,
                                      staff=staff))  # fmt: skip


class Term:
    """A WebSocket terminal client: collects screen output and control messages."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.screen, self.controls = ws, "", []

    async def read_until(self, pattern: str, timeout: float = 20) -> bool:
        async def loop() -> bool:
            while not re.search(pattern, ESCAPES.sub("", self.screen)):
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self.screen += msg.data.decode(errors="replace")
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    self.controls.append(json.loads(msg.data))
                else:
                    return False
            return True

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            return False

    async def control(self, kind: str, timeout: float = 10, where=lambda c: True) -> dict:  # type: ignore[no-untyped-def,type-arg]
        async def loop() -> dict:  # type: ignore[type-arg]
            while True:
                found = [c for c in self.controls if c["type"] == kind and where(c)]
                if found:
                    return found[-1]
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.controls.append(json.loads(msg.data))
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.screen += msg.data.decode(errors="replace")
                else:
                    return {"type": "socket-closed"}

        return await asyncio.wait_for(loop(), timeout)

    async def type(self, text: str) -> None:
        await self.ws.send_bytes(text.encode())


async def _open(http: aiohttp.ClientSession, port: int, ticket: str, origin: str = ORIGIN, size=(100, 30)) -> Term:  # type: ignore[no-untyped-def]
    ws = await http.ws_connect(f"http://127.0.0.1:{port}/terminal?ticket={ticket}&cols={size[0]}&rows={size[1]}",
                               headers={"Origin": origin})  # fmt: skip
    return Term(ws)


async def _size_is(term: Term, rows: int, cols: int) -> bool:
    """The shell's terminal reaches this size (tmux applies a new size just after it redraws the screen)."""
    for _ in range(20):
        await term.type("stty size\n")
        if await term.read_until(rf"[\r\n]{rows} {cols}\r?\n", timeout=1):
            return True
    return False


def test_the_owner_runs_a_command_and_sees_its_output(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    emily = make_workspace("Emily Chen")
    emily.workspace.last_activity_at = None
    session.commit()

    async def scene() -> bool:
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            await term.type("python3 -c 'print(6*7)'\n")
            return await term.read_until(r"[\r\n]42\r?\n")  # the output line, not the echoed command

    assert asyncio.run(scene())
    cert = session.scalar(select(StaffSshCert).where(StaffSshCert.workspace_id == emily.workspace.id))
    assert cert.key_id.startswith(f"terminal:{emily.person.id}:")  # a certificate for this connection, not her key
    session.refresh(emily.workspace)
    assert emily.workspace.last_activity_at is not None  # opening and typing count as activity for idle stop


def test_a_reused_or_unknown_ticket_and_a_foreign_origin_are_refused(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    emily = make_workspace("Emily Chen")
    token = ticket_for(redis, emily)

    async def scene() -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as http:
            for ticket, origin in ((token, "https://evil.example"), ("made-up", ORIGIN), (token, ORIGIN),
                                   (token, ORIGIN)):  # fmt: skip
                try:
                    term = await _open(http, gateway.port, ticket, origin)
                    statuses.append(101)
                    await term.ws.close()
                except aiohttp.WSServerHandshakeError as exc:
                    statuses.append(exc.status)
        return statuses

    assert asyncio.run(scene()) == [403, 401, 101, 401]  # the foreign origin did not use the ticket up
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 1  # one connection, one certificate


def test_a_stopped_workspace_says_so_and_opens_nothing(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    emily = make_workspace("Emily Chen")
    emily.workspace.state = WorkspaceState.STOPPED
    session.commit()

    async def scene() -> dict:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            return await term.control("error")

    assert "stopped" in asyncio.run(scene())["message"]
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 0


def test_a_workspace_locked_out_for_its_final_archive_opens_nothing(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    """A ticket issued before the term-end lockout: the gateway logs in with a tool certificate (the lockout's
    removed keys would not stop it), so it checks the lockout itself and signs nothing."""
    emily = make_workspace("Emily Chen")
    token = ticket_for(redis, emily)
    emily.workspace.locked_out_at = utcnow()
    session.commit()

    async def scene() -> dict:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            return await (await _open(http, gateway.port, token)).control("error")

    assert asyncio.run(scene())["message"] == LOCKED_FOR_ARCHIVE
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 0


def test_staff_watch_a_shared_terminal_and_cannot_type(gateway, make_workspace, redis, session, runtime):  # type: ignore[no-untyped-def]
    sophie = make_workspace("Sophie Martin")
    alex = make_workspace("Alex Thompson", link="alex-ws").person  # any person of the course; staff by the ticket
    start_sharing(redis, Share(sophie.workspace.id, sophie.person.id, sophie.person.name, sophie.workspace.course_id))

    async def scene() -> tuple[bool, bool, dict, bool, str]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            owner = await _open(http, gateway.port, ticket_for(redis, sophie))
            await owner.type("echo ready-$((20+1))\n")
            assert await owner.read_until("ready-21")
            watcher = await _open(http, gateway.port, ticket_for(redis, sophie, mode=Mode.WATCH, person=alex,
                                                                  staff=True))  # fmt: skip
            watching = await owner.control("watchers", where=lambda c: c["names"])
            await watcher.type("touch /home/ubuntu/typed-by-watcher\n")
            await owner.type("python3 -c 'print(\"batch\", 16*2)'\n")
            seen = await watcher.read_until("batch 32")
            await owner.type("ls /home/ubuntu; echo listed-$((1+1))\n")
            await owner.read_until("listed-2")
            stop_sharing(redis, sophie.workspace.id, sophie.workspace.course_id)
            closed = await watcher.control("closed", timeout=10)
            return seen, await owner.read_until("listed-2"), watching, closed["type"] == "closed", owner.screen

    seen, _, watching, dropped, screen = asyncio.run(scene())
    assert seen and watching["names"] == ["Alex Thompson"] and dropped
    assert "typed-by-watcher" not in screen.split("listed-2")[0].split("ls /home/ubuntu")[-1]


def test_a_dropped_connection_reattaches_to_the_same_shell(gateway, make_workspace, redis):  # type: ignore[no-untyped-def]
    emily = make_workspace("Emily Chen")

    async def scene() -> bool:
        async with aiohttp.ClientSession() as http:
            first = await _open(http, gateway.port, ticket_for(redis, emily))
            await first.type("export KEPT=seven; echo set-$((3+4))\n")
            assert await first.read_until("set-7")
            await first.ws.close()  # a network blip
            second = await _open(http, gateway.port, ticket_for(redis, emily), size=(87, 29))  # another window
            await second.type("echo kept-$KEPT\n")
            return await second.read_until("kept-seven") and await _size_is(second, 29, 87)

    assert asyncio.run(scene())


def test_limits_per_person_and_message_size(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    emily = make_workspace("Emily Chen")
    second = make_workspace("Emily Chen 2", link="hw2")
    third = make_workspace("Emily Chen 3", link="hw3")
    for extra in (second, third):  # the same person owning three workspaces
        extra.workspace.person_id = emily.person.id
    session.commit()

    async def scene() -> tuple[str, aiohttp.WSMsgType]:
        async with aiohttp.ClientSession() as http:
            terms = []
            for lw in (emily, second, third):
                lw.person = emily.person
                terms.append(await _open(http, gateway.port, ticket_for(redis, lw)))
            refusal = await terms[2].control("error")
            await terms[0].ws.send_bytes(b"x" * (70 * 1024))
            msg = await terms[0].ws.receive()
            while msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                msg = await terms[0].ws.receive()
            return refusal["message"], msg.type

    message, closed = asyncio.run(scene())
    assert "already have 2 terminals" in message
    assert closed in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


def test_a_burst_of_bad_handshakes_leaves_nothing_behind(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    make_workspace("Emily Chen")

    async def scene() -> list[int]:
        async with aiohttp.ClientSession() as http:

            async def one(n: int) -> int:
                try:
                    await _open(http, gateway.port, f"forged-{n}")
                    return 101
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status

            return await asyncio.gather(*(one(n) for n in range(200)))

    assert set(asyncio.run(scene())) == {401}
    assert gateway.gateway.shells == {} and session.scalar(select(func.count()).select_from(StaffSshCert)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("ssh_cert%"))) == 0


def test_the_shell_outlives_a_gateway_restart(settings, runtime, make_workspace, redis):  # type: ignore[no-untyped-def]
    """The shell runs in tmux on the workspace: a restarted gateway ends its sockets and SSH connection, and the
    next ticket reattaches to the same shell (its variables kept), at the new terminal's size."""
    emily = make_workspace("Emily Chen")
    cfg = replace(settings, runtime_ssh_port=runtime.rt.port)

    def start() -> GatewayThread:
        gw = build_gateway(cfg, limits=Limits(per_person=2, grace_s=30), origins={ORIGIN},
                           target=Target("127.0.0.1", runtime.rt.port, host_key=runtime.key))  # fmt: skip
        thread = GatewayThread(gw)
        thread.port = thread.start()  # type: ignore[attr-defined]
        return thread

    async def before(port: int) -> tuple[bool, dict]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, port, ticket_for(redis, emily))
            await term.type("export X=41; echo set-$((40+1))\n")
            assert await term.read_until("set-41")
            restarting = asyncio.ensure_future(term.control("closed", timeout=20))
            await asyncio.to_thread(first.stop)  # the gateway restarts under the open terminal
            return True, await restarting

    async def after(port: int) -> str:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/terminal?ticket={ticket_for(redis, emily)}"
                                       "&cols=91&rows=33", headers={"Origin": ORIGIN})  # fmt: skip
            term = Term(ws)
            assert await term.read_until("set-41")  # tmux redraws the shell's screen: the same shell, attached
            await term.type("echo got-$X-$((1+1))\n")
            assert await term.read_until(r"got-41-2"), term.screen[-500:]
            assert await _size_is(term, 33, 91)
            return term.screen

    first = start()
    _, closed = asyncio.run(before(first.port))  # type: ignore[attr-defined]
    assert "restarting" in closed["message"] and closed["retry"] is True  # the page reconnects by itself
    second = start()
    try:
        assert "got-41-2" in asyncio.run(after(second.port))  # type: ignore[attr-defined]
    finally:
        second.stop()


def test_the_per_person_open_locks_do_not_pile_up(gateway, make_workspace, redis):  # type: ignore[no-untyped-def]
    """Opens are serialised per person; the lock is dropped once nobody waits on it (opened, refused or not)."""
    emily = make_workspace("Emily Chen")
    david = make_workspace("David Kim", link="hw-david")

    async def scene() -> list[dict]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            terms = await asyncio.gather(*(_open(http, gateway.port, ticket_for(redis, lw))
                                           for lw in (emily, emily, emily, emily, david)))  # fmt: skip
            await terms[-1].type("echo up-$((2+3))\n")
            assert await terms[-1].read_until("up-5")
            for term in terms[:-1]:  # each of Emily's tabs: attached to her one shell (watchers), or refused (closed)
                await term.control("watchers", timeout=20)
            return [c for t in terms for c in t.controls if c["type"] == "error"]

    errors = asyncio.run(scene())
    assert [e["message"] for e in errors] == [
        "This terminal is already open in too many tabs; close one and try again."
    ]
    assert gateway.gateway._opening == {}
    assert sorted(gateway.gateway.shells) == sorted([(emily.workspace.id, emily.person.id),
                                                     (david.workspace.id, david.person.id)])  # fmt: skip


def test_a_watcher_sees_nothing_from_before_sharing_began(gateway, make_workspace, redis, session):  # type: ignore[no-untyped-def]
    """The replay a watcher gets starts when the student started sharing; the student's own tabs get it all."""
    sophie = make_workspace("Sophie Martin")
    alex = make_workspace("Alex Thompson", link="alex-ws").person

    async def scene() -> tuple[str, str]:
        async with aiohttp.ClientSession() as http:
            owner = await _open(http, gateway.port, ticket_for(redis, sophie))
            await owner.type("echo private-$((6*7))\n")
            assert await owner.read_until("private-42")
            await asyncio.sleep(1.2)  # the replay knows when output came to MARK_EVERY_S
            start_sharing(redis, Share(sophie.workspace.id, sophie.person.id, sophie.person.name,
                                       sophie.workspace.course_id))  # fmt: skip
            await asyncio.sleep(1.2)
            await owner.type("echo shared-$((5*5))\n")
            assert await owner.read_until("shared-25")
            watcher = await _open(http, gateway.port, ticket_for(redis, sophie, mode=Mode.WATCH, person=alex,
                                                                  staff=True))  # fmt: skip
            await owner.type("echo live-$((3*3))\n")
            assert await watcher.read_until("live-9")
            second_tab = await _open(http, gateway.port, ticket_for(redis, sophie))
            assert await second_tab.read_until("shared-25")
            return watcher.screen, second_tab.screen

    watched, own = asyncio.run(scene())
    assert "shared-25" in watched and "live-9" in watched
    assert "private" not in watched  # neither the command nor its output
    assert "private-42" in own  # the owner's replay is unchanged


def _budget_stop(session, lw) -> None:  # type: ignore[no-untyped-def]
    """What the enforcement sweep writes when a student's budget is used up (its own statement and events)."""
    plan = Plan(stops=[Stop(lw.workspace.id, lw.workspace.course_id, lw.person.id, "budget", BUDGET_USED_UP)])
    _apply_stops(session, plan, utcnow(), SweepResult())
    session.commit()


def test_a_workspace_stopped_for_its_budget_says_so(gateway, make_workspace, redis, session, runtime):  # type: ignore[no-untyped-def]
    """Mid-session: the sweep stops the workspace over budget and the runtime ends its sessions; the terminal says
    why in the launch refusal's words. A new ticket is then refused with the same words and opens nothing."""
    emily = make_workspace("Emily Chen")

    async def scene() -> dict:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            await term.type("echo up-$((2+2))\n")
            assert await term.read_until("up-4")
            await asyncio.to_thread(_budget_stop, session, emily)
            runtime.call(_end(runtime, emily.workspace.instance_id))  # what its sync does when AWS says stopping
            return await term.control("closed", timeout=20)

    closed = asyncio.run(scene())
    assert closed["message"].startswith("Your workspace was stopped because your budget for this course is used up")
    assert closed["retry"] is False
    certs = session.scalar(select(func.count()).select_from(StaffSshCert))

    async def again() -> dict:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            return await (await _open(http, gateway.port, ticket_for(redis, emily))).control("error")

    assert "budget for this course is used up" in asyncio.run(again())["message"]
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == certs  # nothing signed for it


async def _end(runtime, instance_id: str) -> int:  # type: ignore[no-untyped-def]
    return runtime.rt.end_workspace(instance_id, "stopping")
