"""The browser terminal in the Demo LMS frame: Emily opens it with one click and runs Python; she shares it and
Alex (head TA) watches her typing appear, without being able to type; stopping the share ends his view."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import FrameLocator, Page, expect

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


def _running_workspace(page: Page, frame: FrameLocator) -> None:
    course_link = page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True)
    course_link.click()
    frame.locator("h1").wait_for(timeout=LAUNCH_TIMEOUT_MS)
    frame.get_by_role("button", name="Start my workspace").click(timeout=LAUNCH_TIMEOUT_MS)
    deadline = time.monotonic() + RUNNING_TIMEOUT_MS / 1000
    while frame.get_by_role("link", name="Open terminal").count() == 0:
        assert time.monotonic() < deadline, frame.locator("main").inner_text()
        page.wait_for_timeout(1000)
        course_link.click()
        frame.locator("h1").wait_for(timeout=LAUNCH_TIMEOUT_MS)


def _screen(frame: FrameLocator) -> str:
    return frame.locator(".xterm-rows").inner_text()


def test_emily_runs_python_in_the_frame_and_alex_watches_her_shared_terminal(
    live_server: LiveServer, browser: Browser, gateway: GatewayThread
) -> None:
    page = browser.new_page(third_party_cookies=True)
    open_tool(page, live_server)  # a TA's launch makes the course
    live_server.ensure_policies()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, "Emily Chen")
    frame = page.frame_locator("iframe.tool-frame")
    _running_workspace(page, frame)
    frame.get_by_role("link", name="Open terminal").click()
    expect(frame.locator("#term-status")).to_have_text("Connected.", timeout=30_000)
    expect(frame.locator(".xterm-rows")).to_contain_text("$", timeout=20_000)  # the prompt, then type
    frame.locator(".xterm").click()
    page.keyboard.type("python3 -c 'print(6*7)'\n")
    expect(frame.locator(".xterm-rows")).to_contain_text(re.compile(r"print\(6\*7\)'\s*42"), timeout=20_000)
    shot(page, "terminal-01-emily-runs-python")

    frame.get_by_role("button", name="Share with course staff (view only)").click()
    expect(frame.get_by_role("button", name="Stop sharing")).to_be_visible()

    alex_page = browser.new_page(third_party_cookies=True)
    sign_in(alex_page, live_server, "Alex Thompson")
    alex_page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    alex_frame = alex_page.frame_locator("iframe.tool-frame")
    alex_frame.locator("nav.tabs summary", has_text="Tools").click()  # staff tabs past the daily ones are grouped
    alex_frame.get_by_role("link", name="Shared terminals").click()
    # The page Alex leaves links to Emily Chen too (her student page): wait for the list, or the next click can land
    # on the old page as it unloads.
    expect(alex_frame.get_by_role("heading", name="Shared terminals", exact=True)).to_be_visible()
    alex_frame.get_by_role("link", name="Emily Chen").click()
    expect(alex_frame.locator("#term-status")).to_contain_text("View only", timeout=30_000)
    expect(frame.locator("#term-watchers")).to_have_text("Watching now: Alex Thompson", timeout=10_000)

    frame.locator(".xterm").click()
    page.keyboard.type("echo watched-$((40+2))\n")
    expect(alex_frame.locator(".xterm-rows")).to_contain_text("watched-42", timeout=20_000)
    alex_frame.locator(".xterm").click()
    alex_page.keyboard.type("echo typed-by-alex\n")
    page.wait_for_timeout(1000)
    assert "typed-by-alex" not in _screen(frame) and "typed-by-alex" not in _screen(alex_frame)
    shot(alex_page, "terminal-02-alex-watches")

    frame.get_by_role("button", name="Stop sharing").click()
    expect(alex_frame.locator("#term-status")).to_contain_text("stopped sharing", timeout=10_000)
    live_server.check_jobs()
