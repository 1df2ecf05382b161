"""The browser terminal in the Demo LMS frame: Emily opens it with one click and runs Python; Sophie shares hers and
Alex (head TA) watches her typing appear, without being able to type; stopping the share ends his view. Refusals
seen by the browser: a reused ticket (from the tool's own page) and another site's page cannot open a socket, and a
stopped workspace's terminal page says so. One test: the set-up (launches, two workspaces) is shared."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from sqlalchemy import select

from classroom.models import Person, Workspace
from classroom.services.terminal import Mode, Ticket, issue_ticket
from classroom.workspaces.lifecycle import WorkspaceState
from config.settings import Settings
from provisioning.gateway.connect import Target
from provisioning.gateway.host import GatewayThread, build_gateway
from provisioning.runtime.host import RuntimeThread
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in
from tests.browser.test_platform_storage import open_tool
from tests.browser.test_runtime_ssh import local_runtime  # noqa: F401 - the runtime on a thread, as a fixture

pytestmark = pytest.mark.browser
RUNNING_TIMEOUT_MS = 90_000


@pytest.fixture
def gateway_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings(settings: Settings, local_runtime: RuntimeThread, gateway_port: int) -> Settings:  # noqa: F811
    """The app knows the runtime's and the gateway's ports, as `make run` tells it."""
    return settings.with_(runtime_ssh_port=local_runtime.rt.port, gateway_port=gateway_port)


@pytest.fixture
def gateway(live_server: LiveServer, local_runtime: RuntimeThread, gateway_port: int) -> Iterator[GatewayThread]:  # noqa: F811
    parts = urlsplit(live_server.base_url)
    gw = build_gateway(live_server.settings, origins={f"{parts.scheme}://{parts.netloc}"},
                       target=Target("127.0.0.1", local_runtime.rt.port, host_key=local_runtime.key))  # fmt: skip
    thread = GatewayThread(gw)
    thread.start(gateway_port)
    yield thread
    thread.stop()


def _start_workspace(page: Page, frame: FrameLocator) -> None:
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    frame.locator("h1").wait_for(timeout=LAUNCH_TIMEOUT_MS)
    frame.get_by_role("button", name="Start my workspace").click(timeout=LAUNCH_TIMEOUT_MS)


def _running_workspace(page: Page, frame: FrameLocator) -> None:
    course_link = page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True)
    deadline = time.monotonic() + RUNNING_TIMEOUT_MS / 1000
    while frame.get_by_role("link", name="Open terminal").count() == 0:
        assert time.monotonic() < deadline, frame.locator("main").inner_text()
        page.wait_for_timeout(1000)
        course_link.click()
        frame.locator("h1").wait_for(timeout=LAUNCH_TIMEOUT_MS)


def _screen(frame: FrameLocator) -> str:
    return frame.locator(".xterm-rows").inner_text()


# Open a WebSocket and say how it went: "open" (then closed again) or "refused" (the handshake failed).
TRY_SOCKET = """url => new Promise(resolve => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(); resolve("open"); };
  ws.onerror = () => resolve("refused");
  ws.onclose = e => resolve("refused " + e.code);
})"""


ANOTHER_SITE = '<!doctype html><html lang="en"><title>Another site</title><main><h1>Another site</h1></main></html>'


class _AnotherSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = ANOTHER_SITE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def another_site() -> Iterator[str]:
    """A page of another site, served over real HTTP (a page Playwright fulfils has no address, and Chromium's
    private network rules then refuse its sockets to loopback before they reach the gateway)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AnotherSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _tool_frame(page: Page, live: LiveServer, path: str) -> Frame:
    return next(f for f in page.frames if f.url.startswith(live.base_url + path))


def _emily_ticket_url(live: LiveServer) -> tuple[str, str]:
    """A fresh shell ticket for Emily's workspace, issued as the ticket route does: (URL, Redis key)."""
    with live.sessions() as session:
        emily = session.scalar(select(Person).where(Person.name == "Emily Chen"))
        ws = session.scalar(select(Workspace).where(Workspace.person_id == emily.id))
        token = issue_ticket(live.redis, Ticket(person_id=emily.id, person_name=emily.display_name,
                                                course_id=ws.course_id, workspace_id=ws.id,
                                                owner_person_id=emily.id, mode=Mode.SHELL, staff=False))  # fmt: skip
    return f"{live.settings.terminal_url}?ticket={token}", f"cwc:term:ticket:{token}"


def _stop_emilys_workspace(live: LiveServer) -> None:
    with live.sessions() as session:
        emily = session.scalar(select(Person).where(Person.name == "Emily Chen"))
        ws = session.scalar(select(Workspace).where(Workspace.person_id == emily.id))
        ws.state = WorkspaceState.STOPPED
        session.commit()


def test_emily_runs_python_sophie_shares_with_alex_and_refusals_show(
    live_server: LiveServer,
    browser: Browser,
    gateway: GatewayThread,
    another_site: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = browser.new_page(third_party_cookies=True)
    open_tool(page, live_server)  # a TA's launch makes the course
    live_server.ensure_policies()
    page.get_by_role("button", name="Sign out").click()

    sophie_page = browser.new_page(third_party_cookies=True)  # Sophie's workspace starts while Emily's does
    sign_in(sophie_page, live_server, "Sophie Martinez")
    sophie = sophie_page.frame_locator("iframe.tool-frame")
    _start_workspace(sophie_page, sophie)

    sign_in(page, live_server, "Emily Chen")
    frame = page.frame_locator("iframe.tool-frame")
    _start_workspace(page, frame)
    _running_workspace(page, frame)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    frame.get_by_role("link", name="Open terminal").click()
    expect(frame.locator("#term-status")).to_have_text("Connected.", timeout=30_000)
    expect(frame.locator(".xterm-rows")).to_contain_text("$", timeout=20_000)  # the prompt, then type
    frame.locator(".xterm").click()
    page.keyboard.type("python3 -c 'print(6*7)'\n")
    expect(frame.locator(".xterm-rows")).to_contain_text(re.compile(r"print\(6\*7\)'\s*42"), timeout=20_000)
    shot(page, "terminal-01-emily-runs-python")

    # Refused: the ticket Emily's page just used, again from the tool's own page; a fresh ticket from another site's
    # page, which leaves the ticket unused, so the same ticket then opens from the tool's page (the
    # check can tell an open socket from a refused one).
    tool = _tool_frame(page, live_server, "/app/workspaces/")
    assert len(sockets) == 1 and tool.evaluate(TRY_SOCKET, sockets[0]).startswith("refused")
    fresh, key = _emily_ticket_url(live_server)
    foreign = browser.new_page(third_party_cookies=True)
    foreign.goto(another_site)
    with caplog.at_level("WARNING", logger="provisioning.gateway"):
        assert foreign.evaluate(TRY_SOCKET, fresh).startswith("refused")
    assert urlsplit(another_site).netloc in caplog.text and "refused a terminal from origin" in caplog.text
    assert live_server.redis.exists(key)  # refused before the ticket was used
    assert tool.evaluate(TRY_SOCKET, fresh) == "open" and not live_server.redis.exists(key)
    foreign.close()

    _running_workspace(sophie_page, sophie)
    sophie.get_by_role("link", name="Open terminal").click()
    expect(sophie.locator("#term-status")).to_have_text("Connected.", timeout=30_000)
    sophie.get_by_role("button", name="Share with course staff (view only)").click()
    expect(sophie.get_by_role("button", name="Stop sharing")).to_be_visible()

    alex_page = browser.new_page(third_party_cookies=True)
    sign_in(alex_page, live_server, "Alex Thompson")
    alex_page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    alex_frame = alex_page.frame_locator("iframe.tool-frame")
    alex_frame.locator("nav.tabs summary", has_text="Tools").click()  # staff tabs past the daily ones are grouped
    alex_frame.get_by_role("link", name="Shared terminals").click()
    # The page Alex leaves links to students too (their pages): wait for the list, or the next click can land on the
    # old page as it unloads.
    expect(alex_frame.get_by_role("heading", name="Shared terminals", exact=True)).to_be_visible()
    alex_frame.get_by_role("link", name="Sophie Martinez").click()
    expect(alex_frame.locator("#term-status")).to_contain_text("View only", timeout=30_000)
    expect(sophie.locator("#term-watchers")).to_have_text("Watching now: Alex Thompson", timeout=10_000)

    sophie.locator(".xterm").click()
    sophie_page.keyboard.type("echo watched-$((40+2))\n")
    expect(alex_frame.locator(".xterm-rows")).to_contain_text("watched-42", timeout=20_000)
    alex_frame.locator(".xterm").click()
    alex_page.keyboard.type("echo typed-by-alex\n")
    alex_page.wait_for_timeout(1000)
    assert "typed-by-alex" not in _screen(sophie) and "typed-by-alex" not in _screen(alex_frame)
    shot(alex_page, "terminal-02-alex-watches")

    sophie.get_by_role("button", name="Stop sharing").click()
    expect(alex_frame.locator("#term-status")).to_contain_text("stopped sharing", timeout=10_000)

    _stop_emilys_workspace(live_server)  # a stopped workspace: her terminal page says so and opens nothing
    sockets.clear()
    tool.goto(tool.url)
    expect(frame.locator("#term-status")).to_contain_text("Your workspace is stopped", timeout=20_000)
    assert sockets == []
    shot(page, "terminal-03-stopped")
    live_server.check_jobs()
