"""Alex (head TA) goes from Sophie's page to her debug page, reads her train.py in the files viewer, opens a
view-only debug session and logs in with the certificate the page gives him; the recording is stored."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from classroom.db import make_engine, make_session_factory
from classroom.models import DebugRecording, Enrollment, Person
from classroom.roles import StaffLevel
from config.settings import Settings
from provisioning.aws import AwsBackend
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.host import RuntimeThread
from provisioning.runtime.service import LocalRuntime
from provisioning.ssh_keys import generate_key_pair
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, frame_settled, shot, sign_in
from tests.browser.test_platform_storage import open_tool

pytestmark = pytest.mark.browser
RUNNING_TIMEOUT_MS = 90_000


@pytest.fixture
def data_dir() -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix="cwc-debug-", dir="/tmp"))
    top.chmod(0o711)
    (top / "runtime").mkdir(mode=0o711)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def local_runtime(database_url: str, backend: AwsBackend, data_dir: Path) -> Iterator[RuntimeThread]:
    engine = make_engine(database_url)
    rt = LocalRuntime(FactsLoader(make_session_factory(engine), backend), data_dir / "runtime")
    thread = RuntimeThread(rt, asyncssh.generate_private_key("ssh-ed25519"))
    thread.start()
    yield thread
    thread.stop()
    engine.dispose()


@pytest.fixture
def settings(settings: Settings, local_runtime: RuntimeThread, data_dir: Path) -> Settings:
    """The app knows the runtime's port and reads its homes from its data folder, as under `make run`."""
    return settings.with_(runtime_ssh_port=local_runtime.rt.port, data_dir=data_dir)


def _sophie_starts_her_workspace(page, live: LiveServer, tmp_path: Path) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    sign_in(page, live, "Sophie Martinez")
    course_link = page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True)
    course_link.click()
    frame = page.frame_locator("iframe.tool-frame")
    frame.get_by_role("link", name="SSH keys").click()
    with page.expect_download() as download:
        frame.get_by_role("button", name="Create and download my key").click()
    key = tmp_path / download.value.suggested_filename
    download.value.save_as(key)
    key.chmod(0o600)
    course_link.click()
    frame.get_by_role("button", name="Start my workspace").click()
    code = frame.locator("dd code", has_text="ssh -p")
    deadline = time.monotonic() + RUNNING_TIMEOUT_MS / 1000
    while code.count() == 0 or "Running" not in frame.locator("h2").first.inner_text():
        assert time.monotonic() < deadline, frame.locator("main").inner_text()
        page.wait_for_timeout(1000)
        course_link.click()
        frame.locator("h1").wait_for(timeout=LAUNCH_TIMEOUT_MS)
    return code.inner_text().strip(), key


def test_alex_reads_sophies_files_and_opens_a_view_only_session(
    live_server: LiveServer, browser: Browser, local_runtime: RuntimeThread, tmp_path: Path
) -> None:
    page = browser.new_page(third_party_cookies=True)
    open_tool(page, live_server)  # Priya's launch makes the course
    live_server.ensure_policies()
    page.get_by_role("button", name="Sign out").click()
    open_tool(page, live_server, "Alex Thompson")
    page.get_by_role("button", name="Sign out").click()
    command, key = _sophie_starts_her_workspace(page, live_server, tmp_path)
    argv = command.replace(f"~/.ssh/{key.name}", str(key)).split()
    argv[1:1] = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    write = "mkdir -p homework/hw1 && printf 'batch_size = 4096\\n' > homework/hw1/train.py"
    assert subprocess.run([*argv, write], capture_output=True, timeout=60).returncode == 0
    page.get_by_role("button", name="Sign out").click()
    with live_server.sessions() as session:  # Dr. Martinez makes Alex head TA (the Staff page does it too)
        alex = session.scalar(select(Enrollment).join(Person).where(Person.given_name == "Alex"))
        alex.level = StaffLevel.HEAD_TA
        session.commit()

    open_tool(page, live_server, "Alex Thompson", role="Head TA")
    frame = page.frame_locator("iframe.tool-frame")
    frame.get_by_role("link", name="Sophie Martinez").first.click()
    frame.get_by_role("link", name="Debug: status, files, SSH session").click()
    expect(frame.locator("#ws-state")).to_contain_text("running", timeout=LAUNCH_TIMEOUT_MS)
    frame_settled(page)  # the frame settles its height before the picture
    shot(page, "debug-01-status")
    frame.get_by_role("link", name="Browse Sophie Martinez's home (read-only)").click()
    frame.get_by_role("link", name="homework/").click()
    frame.get_by_role("link", name="hw1/").click()
    frame.get_by_role("link", name="train.py").click()
    expect(frame.locator("#file-text")).to_contain_text("batch_size = 4096")
    shot(page, "debug-02-file")
    frame.get_by_role("link", name="Back to the debug page").click()

    private, public = generate_key_pair("alex")
    frame.get_by_label("Reason (the student reads it)").fill("Her training run crashes at the first batch")
    frame.get_by_label("Your public key (the .pub file)").fill(public)
    frame.get_by_role("button", name="Open debug session").click()
    expect(frame.locator("#session-opened")).to_contain_text("view-only", timeout=LAUNCH_TIMEOUT_MS)
    frame_settled(page)
    shot(page, "debug-03-session-open")
    cert = frame.locator("#ssh-cert").inner_text().strip()
    shown = frame.locator("#ssh-cert-command").inner_text().strip()
    alex_key = tmp_path / "alex_ed25519"
    alex_key.write_text(private)
    alex_key.chmod(0o600)
    (tmp_path / "alex_ed25519-cert.pub").write_text(cert + "\n")  # where ssh looks for the key's certificate
    ssh = shown.replace("~/.ssh/id_ed25519", str(alex_key)).split()
    ssh[1:1] = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    done = subprocess.run([*ssh, "grep batch_size homework/hw1/train.py"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "4096" in done.stdout and "recorded" in done.stderr, done.stderr
    with live_server.sessions() as session:
        assert session.scalar(select(DebugRecording)) is not None

    # Dr. Martinez replays it in the tool: the vendored player runs (no CSP refusal) and the transcript shows it.
    page.get_by_role("button", name="Sign out").click()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    open_tool(page, live_server, "Jennifer Martinez", role="Instructor")
    frame = page.frame_locator("iframe.tool-frame")
    frame.get_by_role("link", name="Sophie Martinez").first.click()
    expect(frame.get_by_role("heading", name="Sophie Martinez")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    frame.get_by_role("link", name="Debug: status, files, SSH session").click()
    expect(frame.get_by_role("heading", name="Debug: Sophie Martinez")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    frame.get_by_role("link", name=re.compile("^Replay")).click()
    frame.get_by_role("link", name=re.compile("^Channel 1")).click()
    expect(frame.locator("#typed")).to_contain_text("grep batch_size homework/hw1/train.py")
    expect(frame.locator("#player .ap-wrapper, #player .ap-player").first).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    frame_settled(page)
    shot(page, "debug-04-replay")
    assert not refused, refused
    live_server.check_jobs()
