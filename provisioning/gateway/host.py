"""Build and run the gateway: in its own process (make run) or on a thread (tests and bench)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from redis import Redis
from sqlalchemy import text

from classroom.db import make_engine, make_session_factory
from classroom.models import Workspace
from config.settings import Settings
from provisioning.gateway.connect import Target, open_shell, target_of, why_not_running
from provisioning.gateway.hub import Limits
from provisioning.gateway.server import Gateway

ACTIVE = text(
    "UPDATE workspaces SET last_activity_at = GREATEST(COALESCE(last_activity_at, now()), now()) WHERE id = :id"
)


def tool_origin(settings: Settings) -> str:
    """The origin of the tool's own pages: the only one allowed to open terminals."""
    parts = urlsplit(settings.base_url)
    return f"{parts.scheme}://{parts.netloc}"


def build_gateway(
    settings: Settings, limits: Limits | None = None, origins: set[str] | None = None, target: Target | None = None
) -> Gateway:
    """The gateway over the tool's database and Redis, logging in to the local runtime (or `target`) for its own
    workspaces and to EC2 instances by their pinned host keys."""
    target = target or target_of(settings)
    sessions = make_session_factory(make_engine(settings.database_url or "", pool_size=4))

    async def opener(ticket, cols, rows):  # type: ignore[no-untyped-def]
        return await open_shell(target, sessions, settings, ticket, cols, rows)

    def mark_active(workspace_id: int) -> None:
        with sessions() as session:  # one short statement; never moves the mark back
            session.execute(ACTIVE, {"id": workspace_id})
            session.commit()

    def explain(workspace_id: int) -> str:
        with sessions() as session:
            ws = session.get(Workspace, workspace_id)
            return why_not_running(session, ws) if ws is not None else "This workspace does not exist."

    redis = Redis.from_url(settings.redis_url or "")
    return Gateway(redis, opener, origins or {tool_origin(settings)}, limits, mark_active=mark_active,
                   explain=explain)  # fmt: skip


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The gateway's server TLS context when it has a certificate (CWC_GATEWAY_TLS_CERT/_KEY), else None (ws://)."""
    if not settings.gateway_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.gateway_tls_cert, settings.gateway_tls_key or None)
    return context


class AccessLog(AbstractAccessLogger):
    """aiohttp's access log without the query string: a terminal's URL carries its ticket, a secret."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method, request.path, response.status, time)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class GatewayThread:
    """The gateway on its own event loop in a thread (tests, bench): start() returns its port; stop()."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> int:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._serve(port, tls), self.loop).result(30)

    async def _serve(self, port: int, tls: ssl.SSLContext | None) -> int:
        self._runner = web.AppRunner(self.gateway.app(), access_log_class=AccessLog)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=tls)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def call(self, coro, timeout: float = 30):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def serve(settings: Settings) -> None:
    """Serve on 127.0.0.1:CWC_GATEWAY_PORT until stopped (a reverse proxy puts it under the tool's host), over TLS
    when it has a certificate (wss://, e.g. `CWC_DEV_HTTPS=1 make run`)."""
    web.run_app(build_gateway(settings).app(), host="127.0.0.1", port=settings.gateway_port, print=None,
                shutdown_timeout=5, ssl_context=tls_context(settings), access_log_class=AccessLog)  # fmt: skip
