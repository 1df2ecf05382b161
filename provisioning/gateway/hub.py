"""One live terminal: an SSH shell on a workspace, its owner's sockets (read and type) and its watchers (read only).

The shell outlives a dropped WebSocket for `grace_s` (a network blip, a reloaded frame): the owner's next ticket
reattaches to it and gets the recent screen output again. Watchers see what the owner sees from when sharing began
(no replay of the output from before; but a redraw, which tmux sends when the owner reconnects or resizes, shows
the whole current screen, earlier lines still on it included) and never type.
Each socket has its own bounded send queue, so a slow watcher cannot stall the owner; one that falls behind is
dropped with a message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

SEND_QUEUE = 512  # frames a socket may lag behind before it is dropped
ACTIVITY_EVERY_S = 60.0  # typing marks the workspace active at most this often
MARK_EVERY_S = 1.0  # how finely the replay knows when its output came (a watcher's replay starts at a mark)


@dataclass(frozen=True)
class Limits:
    """The gateway's limits (see provisioning/gateway/server.py for where each applies)."""

    per_person: int = 3  # live shells per person, across workspaces
    sockets_per_shell: int = 3  # the owner's tabs on one shell
    watchers_per_shell: int = 5
    idle_s: float = 30 * 60  # no keystroke for this long: the shell is closed
    max_s: float = 8 * 3600  # a shell's longest life
    grace_s: float = 120  # a shell with no owner socket waits this long for a reconnect
    max_message: int = 64 * 1024  # bytes in one WebSocket message
    replay: int = 64 * 1024  # bytes of recent output sent to a socket that (re)attaches


@dataclass(eq=False)
class Peer:
    """One WebSocket attached to a shell, with its send queue."""

    ws: web.WebSocketResponse
    name: str
    watcher: bool
    queue: asyncio.Queue[bytes | str | None] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._send_loop())

    async def _send_loop(self) -> None:
        try:
            while (item := await self.queue.get()) is not None:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
        except (ConnectionError, RuntimeError):
            pass

    def offer(self, item: bytes | str) -> bool:
        """Queue a frame; False when the peer is too far behind."""
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            return False

    async def close(self, message: str, code: int = WSCloseCode.GOING_AWAY, retry: bool = False) -> None:
        """Say why (`retry`: the page should reconnect by itself) and close."""
        self.offer(control("closed", message=message, retry=retry))
        self.queue.put_nowait(None) if not self.queue.full() else None
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 2)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
        await self.ws.close(code=code, message=message[:120].encode())


def control(kind: str, **fields: Any) -> str:
    """A control frame (text, JSON); terminal data travels as binary frames."""
    return json.dumps({"type": kind, **fields})


class Shell:
    """An SSH shell process and everyone attached to it."""

    def __init__(self, key: tuple[int, int], conn: Any, process: Any, limits: Limits,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.key, self.conn, self.process, self.limits, self.clock = key, conn, process, limits, clock
        self.owners: list[Peer] = []
        self.watchers: list[Peer] = []
        self.recent = bytearray()
        self.total = 0  # bytes of output so far; `recent` is its last `limits.replay` bytes
        self.marks: deque[tuple[float, int]] = deque()  # (wall time, output offset) of the replay's chunks
        self.wall = time.time  # the clock sharing's start is read on (the Flask app stamps it)
        self.started = self.last_input = clock()
        self.detached_at: float | None = clock()
        self.ended = False
        self.end_reason = ""
        self.pump_task: asyncio.Task[None] | None = None
        self.on_activity: Callable[[int], None] = lambda _ws: None  # the gateway records it (idle stop)
        self.explain: Callable[[int], str] = lambda _ws: ""  # why the workspace is not running ("" when it is)
        self._reported = -ACTIVITY_EVERY_S

    def start(self) -> None:
        self.pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while chunk := await self.process.stdout.read(16384):
                self._broadcast(chunk)
        except Exception:  # noqa: BLE001 - the SSH channel ended under us; end the shell below
            pass
        if not self.ended:  # not the gateway's own end: say why when the workspace was stopped under it
            await self.end(await self._why_ended() or "The shell ended (the workspace stopped, or you typed exit).")

    async def _why_ended(self) -> str:
        try:
            return await asyncio.to_thread(self.explain, self.key[0])
        except Exception:  # noqa: BLE001 - the database may be away; the general message then
            return ""

    def _broadcast(self, chunk: bytes) -> None:
        now = self.wall()
        if not self.marks or now - self.marks[-1][0] >= MARK_EVERY_S:
            self.marks.append((now, self.total))
        self.total += len(chunk)
        self.recent += chunk
        if len(self.recent) > self.limits.replay:
            del self.recent[: len(self.recent) - self.limits.replay]
            floor = self.total - len(self.recent)
            while len(self.marks) > 1 and self.marks[1][1] <= floor:
                self.marks.popleft()
        for peer in [*self.owners, *self.watchers]:
            if not peer.offer(chunk):
                asyncio.ensure_future(self.detach(peer, "Your connection fell too far behind; reopen the terminal."))

    def attach(self, peer: Peer, since: float = 0.0) -> None:
        """Attach a socket: it first gets the recent output (a watcher: only what came after `since`, when the
        student started sharing), then live output."""
        (self.watchers if peer.watcher else self.owners).append(peer)
        peer.start()
        replay = self.output_since(since) if peer.watcher else bytes(self.recent)
        if replay:
            peer.offer(replay)
        if not peer.watcher:
            self.detached_at = None
        self.tell_watchers()

    async def detach(self, peer: Peer, message: str = "") -> None:
        """Remove a socket (closing it with `message` when given); the shell waits for a reconnect."""
        group = self.watchers if peer.watcher else self.owners
        closing = peer in group and bool(message)
        if peer in group:
            group.remove(peer)
            if not message and peer.task is not None:
                peer.queue.put_nowait(None) if not peer.queue.full() else peer.task.cancel()
        if not self.owners and self.detached_at is None:
            self.detached_at = self.clock()
        self.tell_watchers()  # before closing: a slow peer's close can take seconds
        if closing:
            await peer.close(message)

    def tell_watchers(self) -> None:
        """The owner sees who is watching."""
        names = sorted({w.name for w in self.watchers})
        for owner in self.owners:
            owner.offer(control("watchers", names=names))

    def output_since(self, since: float) -> bytes:
        """The recent output that came at or after `since` (epoch seconds; marks are up to MARK_EVERY_S apart, so
        up to that much of what came just after may be left out, never anything from before)."""
        start = next((offset for at, offset in self.marks if at >= since), self.total)
        keep = min(self.total - start, len(self.recent))
        return bytes(self.recent[len(self.recent) - keep :]) if keep else b""

    def type(self, data: bytes) -> None:
        self.last_input = self.clock()
        self.process.stdin.write(data)
        self.note_activity()

    def note_activity(self) -> None:
        """Opening and typing count as activity for idle stop (at most once a minute per shell)."""
        if self.clock() - self._reported >= ACTIVITY_EVERY_S:
            self._reported = self.clock()
            self.on_activity(self.key[0])

    def resize(self, cols: int, rows: int) -> None:
        if 2 <= cols <= 500 and 2 <= rows <= 300:
            self.process.change_terminal_size(cols, rows)

    def expired(self) -> str:
        """Why the shell must end now ('' when it may go on)."""
        now = self.clock()
        if now - self.started >= self.limits.max_s:
            return "The terminal reached its maximum length; open it again to go on."
        if now - self.last_input >= self.limits.idle_s:
            return "The terminal was closed after a long time without typing; open it again to go on."
        if self.detached_at is not None and now - self.detached_at >= self.limits.grace_s:
            return "closed: no browser attached"
        return ""

    async def drop_watchers(self, message: str) -> None:
        for peer in list(self.watchers):
            await self.detach(peer, message)

    async def end(self, reason: str, retry: bool = False) -> None:
        """Close every socket with `reason` and the SSH connection (idempotent); the shell itself lives on in tmux
        on the workspace (provisioning/gateway/connect.py). `retry`: the pages reconnect by themselves."""
        if self.ended:
            return
        self.ended, self.end_reason = True, reason
        for peer in [*self.owners, *self.watchers]:
            await peer.close(reason, retry=retry)
        self.owners.clear()
        self.watchers.clear()
        self.conn.close()
