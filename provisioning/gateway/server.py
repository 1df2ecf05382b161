"""The terminal gateway: WebSocket in, SSH out. Its own process (aiohttp); the Flask app never carries this traffic.

A connection needs, at the handshake, an Origin that is the tool's own (`allowed_origins`) and a one-time ticket
from the Flask app (classroom/services/terminal.py); anything else is refused before the upgrade with nothing
allocated. Binary frames are keystrokes in and screen output out; text frames are JSON control messages
(`{"type": "resize", "cols": .., "rows": ..}` in; `watchers`, `notice`, `closed` (with `retry`: true when the page
should reconnect by itself, the gateway restarting) and `error` out). Watchers' input is ignored.
Limits (hub.Limits): shells per person, sockets and watchers per shell, idle and maximum length, message size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from redis import Redis

from classroom.services.terminal import Mode, Ticket, redeem_ticket, shared
from provisioning.gateway.connect import Refused
from provisioning.gateway.hub import Limits, Peer, Shell, control

log = logging.getLogger("provisioning.gateway")
SWEEPER = web.AppKey("sweeper", asyncio.Task)
Opener = Callable[[Ticket, int, int], Awaitable[tuple[Any, Any]]]


class Gateway:
    """Live shells by (workspace, owner), the limits, and the sweeper that ends expired shells."""

    def __init__(
        self,
        redis: Redis,
        opener: Opener,
        allowed_origins: set[str],
        limits: Limits | None = None,
        mark_active: Callable[[int], None] = lambda _ws: None,
        clock: Callable[[], float] = time.monotonic,
        explain: Callable[[int], str] = lambda _ws: "",
    ) -> None:
        self.redis, self.opener, self.allowed_origins, self.mark_active = redis, opener, allowed_origins, mark_active
        self.clock = clock  # the shells' clock, which the sweeper reads (tests move it forward)
        self.explain = explain  # blocking: why a workspace is not running ("" when it is), for a shell that ended
        self.limits = limits or Limits()
        self.shells: dict[tuple[int, int], Shell] = {}
        self._opening: dict[int, tuple[asyncio.Lock, list[int]]] = {}  # per person: opens one at a time (limits
        # hold); an entry lives while someone waits on it, so the map does not grow with every person ever seen

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_get("/terminal", self.handle)
        application.router.add_get("/healthz", self.health)
        application.on_startup.append(self._start_sweeper)
        application.on_shutdown.append(self._shutdown)
        return application

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "shells": len(self.shells)})

    async def _start_sweeper(self, application: web.Application) -> None:
        application[SWEEPER] = asyncio.ensure_future(self._sweep_forever())

    async def _shutdown(self, application: web.Application) -> None:
        application[SWEEPER].cancel()
        for shell in list(self.shells.values()):
            await shell.end("The terminal service is restarting; reconnecting in a moment.", retry=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self.sweep()

    async def sweep(self) -> None:
        """End expired shells; drop watchers of a shell no longer shared."""
        for key, shell in list(self.shells.items()):
            reason = shell.expired() or ("" if not shell.ended else shell.end_reason)
            if reason:
                await shell.end(reason)
                self.shells.pop(key, None)
            elif shell.watchers and await asyncio.to_thread(self._share_gone, shell):
                await shell.drop_watchers("The student stopped sharing their terminal.")

    def _activity(self, workspace_id: int) -> None:
        task = asyncio.ensure_future(asyncio.to_thread(self.mark_active, workspace_id))
        task.add_done_callback(_log_failure)

    def _share_gone(self, shell: Shell) -> bool:
        share = shared(self.redis, shell.key[0])
        return share is None or share.owner_person_id != shell.key[1]

    def _origin_ok(self, request: web.Request) -> bool:
        return request.headers.get("Origin", "") in self.allowed_origins

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket handshake: origin, ticket, then the shell (owner) or the shared shell (watcher)."""
        if not self._origin_ok(request):
            log.warning("refused a terminal from origin %r", request.headers.get("Origin", ""))
            return web.Response(status=403, text="This terminal can only be opened from Cloud Workstation's pages.")
        ticket = await asyncio.to_thread(redeem_ticket, self.redis, request.query.get("ticket", ""))
        if ticket is None:
            return web.Response(status=401, text="This terminal link has expired or was already used.")
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_message, heartbeat=25)
        await ws.prepare(request)
        since = 0.0
        try:
            if ticket.mode is Mode.WATCH:
                shell, since = await self._watch(ticket)
            else:
                shell = await self._own(ticket, request)
        except Refused as exc:
            await ws.send_str(control("error", message=str(exc)))
            await ws.close()
            return ws
        peer = Peer(ws, ticket.person_name, watcher=ticket.mode is Mode.WATCH)
        shell.attach(peer, since=since)
        if peer.watcher:
            peer.offer(control("notice", message="View only: you see the student's terminal and cannot type."))
        await self._read(ws, shell, peer)
        return ws

    async def _own(self, ticket: Ticket, request: web.Request) -> Shell:
        key = (ticket.workspace_id, ticket.owner_person_id)
        async with self._one_at_a_time(ticket.owner_person_id):  # two tabs at once: one shell
            shell = self.shells.get(key)
            cols, rows = _size(request.query.get("cols"), 80), _size(request.query.get("rows"), 24)
            if shell is not None and not shell.ended:
                if len(shell.owners) >= self.limits.sockets_per_shell:
                    raise Refused("This terminal is already open in too many tabs; close one and try again.")
                shell.resize(cols, rows)  # the reconnecting window's size, not the last one's
                return shell
            mine = [s for (w, p), s in self.shells.items() if p == ticket.owner_person_id and not s.ended]
            if len(mine) >= self.limits.per_person:
                raise Refused(f"You already have {len(mine)} terminals open; close one and try again.")
            conn, process = await self.opener(ticket, cols, rows)
            shell = Shell(key, conn, process, self.limits, clock=self.clock)
            shell.on_activity, shell.explain = self._activity, self.explain
            shell.start()
            shell.note_activity()
            self.shells[key] = shell
            log.info("terminal opened ws%s by person %s", ticket.workspace_id, ticket.person_id)
            return shell

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, person_id: int) -> AsyncIterator[None]:
        lock, users = self._opening.setdefault(person_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._opening[person_id]

    async def _watch(self, ticket: Ticket) -> tuple[Shell, float]:
        """The shared shell and when sharing began (a watcher's replay starts there)."""
        share = await asyncio.to_thread(shared, self.redis, ticket.workspace_id)
        if share is None or share.owner_person_id != ticket.owner_person_id:
            raise Refused("The student is not sharing their terminal right now.")
        shell = self.shells.get((ticket.workspace_id, ticket.owner_person_id))
        if shell is None or shell.ended or not shell.owners:
            raise Refused("The student's terminal is not open right now.")
        if len(shell.watchers) >= self.limits.watchers_per_shell:
            raise Refused("Too many people are watching this terminal already.")
        return shell, share.started_at

    async def _read(self, ws: web.WebSocketResponse, shell: Shell, peer: Peer) -> None:
        try:
            async for msg in ws:
                if shell.ended:
                    break
                if msg.type is WSMsgType.BINARY and not peer.watcher:
                    shell.type(msg.data)
                elif msg.type is WSMsgType.TEXT and not peer.watcher:
                    _control(shell, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            await shell.detach(peer)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not record terminal activity: %s", task.exception())


def _size(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() and 2 <= int(value) <= 500 else default


def _control(shell: Shell, text: str) -> None:
    try:
        data = json.loads(text)
    except ValueError:
        return
    if isinstance(data, dict) and data.get("type") == "resize":
        cols, rows = data.get("cols"), data.get("rows")
        if isinstance(cols, int) and isinstance(rows, int):
            shell.resize(cols, rows)
