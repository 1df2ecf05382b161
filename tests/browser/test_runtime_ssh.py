"""Emily makes a key in the tool, her workspace starts in simulated AWS, and the real OpenSSH client logs in to
the local runtime with exactly the command her page shows."""

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
from sqlalchemy import update

from classroom.db import make_engine, make_session_factory
from classroom.models import CoursePolicy
from config.settings import Settings
from provisioning.aws import AwsBackend
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.host import RuntimeThread
from provisioning.runtime.service import LocalRuntime
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in
from tests.browser.test_platform_storage import open_tool

pytestmark = pytest.mark.browser
RUNNING_TIMEOUT_MS = 90_000


@pytest.fixture
def local_runtime(database_url: str, backend: AwsBackend) -> Iterator[RuntimeThread]:
    root = Path(tempfile.mkdtemp(prefix="cwc-runtime-", dir="/tmp"))
    root.chmod(0o711)
    engine = make_engine(database_url)
    thread = RuntimeThread(LocalRuntime(FactsLoader(make_session_factory(engine), backend), root),
                           asyncssh.generate_private_key("ssh-ed25519"))  # fmt: skip
    thread.start()
    yield thread
    thread.stop()
    engine.dispose()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def settings(settings: Settings, local_runtime: RuntimeThread) -> Settings:
    """The app under test knows the runtime's port, as `make run` tells it."""
    return settings.with_(runtime_ssh_port=local_runtime.rt.port)


def test_emily_logs_in_over_ssh_with_the_command_her_page_shows(
    live_server: LiveServer, browser: Browser, local_runtime: RuntimeThread, tmp_path: Path
) -> None:
    page = browser.new_page(third_party_cookies=True)
    open_tool(page, live_server)  # a TA's launch makes the course
    live_server.ensure_policies()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, "Emily Chen")
    course_link = page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True)
    course_link.click()
    frame = page.frame_locator("iframe.tool-frame")
    # Her key first (the page shows no SSH command without one), then the explicit Start (a visit starts nothing).
    frame.get_by_role("link", name="SSH keys").click()
    with page.expect_download() as download:
        frame.get_by_role("button", name="Create and download my key").click()
    key_name = download.value.suggested_filename
    key = tmp_path / key_name
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
    command = code.inner_text().strip()
    assert re.fullmatch(rf"ssh -p {local_runtime.rt.port} -i ~/\.ssh/{key_name} ws\d+@127\.0\.0\.1", command), command
    shot(page, "runtime-01-student-ssh-command")

    argv = command.replace(f"~/.ssh/{key_name}", str(key)).split()
    argv[1:1] = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    done = subprocess.run([*argv, "echo", "hello from", "$USER"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "hello from ubuntu\n"), done.stderr
    live_server.check_jobs()

    # The course collects activity: her curl download reaches the tool through the agent's real HTTP batch, and
    # "What is recorded" (linked next to the command) shows it to her.
    with live_server.sessions() as session:
        session.execute(update(CoursePolicy).values(integrity={"plagiarism_support": True}))
        session.commit()
    local_runtime.sync()  # the runtime's pass (every 2 s in `make run`) sees the setting
    fetch = "echo 'print(1)' > /tmp/hw.py && curl -s -o starter.py file:///tmp/hw.py && echo fetched"
    done = subprocess.run([*argv, fetch], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "fetched\n"), done.stderr
    local_runtime.sync()
    local_runtime.call(local_runtime.rt.collect_all())
    frame.get_by_role("link", name="what is recorded").first.click()
    frame.get_by_role("heading", name="Your latest recorded activity").wait_for(timeout=LAUNCH_TIMEOUT_MS)
    table = frame.locator("table").inner_text()
    assert "download" in table and '"path": "starter.py"' in table and "file:///tmp/hw.py" in table, table
    shot(page, "runtime-02-student-what-is-recorded")
