"""Issue 15 item 3 in Chromium: Dr. Martinez uploads a generated 60 MB file into `datasets/week1/` straight to the
simulated S3 (presigned parts, progress shown), sees it listed with its folder and a human-readable size, renames
it, then deletes it. axe-core checks every page on load (tests/browser/conftest.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in
from tests.browser.test_demo_lms import nav_link, tool

pytestmark = pytest.mark.browser
UPLOAD_TIMEOUT_MS = 120_000  # four 16 MB parts through the local moto server on a loaded 2-core machine


def test_instructor_uploads_a_60_mb_file_in_folders_renames_and_deletes_it(
    live_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(60 * 1024 * 1024))
    page = browser.new_page(third_party_cookies=True)
    sign_in(page, live_server, "Jennifer Martinez")
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    expect(frame.locator("header .who")).to_contain_text("Jennifer Martinez", timeout=LAUNCH_TIMEOUT_MS)
    live_server.ensure_policies()  # skip the set-up wizard
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    frame.locator("nav.tabs summary", has_text="Set-up").click()  # staff tabs past the daily ones are grouped
    frame.get_by_role("link", name="Course materials").click()
    expect(frame.get_by_role("heading", name="Course materials")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)

    frame.get_by_label("Put them in a folder").fill("datasets/week1")
    frame.get_by_label("Files", exact=True).set_input_files(str(big))
    frame.get_by_role("button", name="Upload").click()
    expect(frame.locator("#upload-list progress")).to_have_attribute("aria-label", "Upload of datasets/week1/big.bin")
    expect(frame.locator("#upload-list .upload-text")).to_contain_text(re.compile(r"\d+% \(.* of 60\.0 MB\)"))
    shot(page, "materials-01-uploading")
    row = frame.locator("tr", has_text="datasets/week1/big.bin")
    expect(row).to_contain_text("60.0 MB", timeout=UPLOAD_TIMEOUT_MS)
    shot(page, "materials-02-listed")

    row.get_by_label("New name for datasets/week1/big.bin").fill("datasets/week1/big-v2.bin")
    row.get_by_role("button", name="Rename").click()
    renamed = frame.locator("tr", has_text="datasets/week1/big-v2.bin")
    expect(renamed).to_contain_text("60.0 MB")
    renamed.get_by_role("button", name="Delete datasets/week1/big-v2.bin").click()
    expect(frame.get_by_text("Nothing uploaded yet.")).to_be_visible()
    shot(page, "materials-03-deleted")
    live_server.check_jobs()
