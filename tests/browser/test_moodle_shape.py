"""The Demo LMS playing Moodle 4.5 in Chromium with third-party cookies blocked: no platform storage, one-time
launch ids, TAs launched as Instructor. The launch is finished in a new window (item 3) and the TA lands as a
read-only TA whom the owner raises on the Staff page (item 1)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from config.settings import Settings
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(demo_lms_shape="moodle")


def open_in_new_window(page: Page, persona: str) -> Page:
    """Click the course link; the iframe offers the new window; the new window continues as the persona."""
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    frame = page.frame_locator("iframe.tool-frame")
    link = frame.get_by_role("link", name="Open in a new window")
    expect(link).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    with page.context.expect_page() as opened:
        link.click()
    window = opened.value
    window.get_by_role("button", name=f"Continue as {persona}").click()
    expect(window.locator("header .who")).to_contain_text(persona, timeout=LAUNCH_TIMEOUT_MS)
    return window


def test_moodle_launches_finish_in_a_new_window_and_the_owner_sets_the_ta_level(
    live_server: LiveServer, browser: Browser
) -> None:
    owner_page = browser.new_page(third_party_cookies=False)
    sign_in(owner_page, live_server, "Jennifer Martinez")
    owner = open_in_new_window(owner_page, "Jennifer Martinez")
    expect(owner.get_by_role("heading", name="Set up Cloud Workstation")).to_be_visible()  # the owner's wizard
    shot(owner, "moodle-01-owner-new-window")
    live_server.ensure_policies()

    ta_page = browser.new_page(third_party_cookies=False)
    sign_in(ta_page, live_server, "Priya Sharma")
    ta = open_in_new_window(ta_page, "Priya Sharma")
    expect(ta.locator("header .who")).to_contain_text("Teaching assistant (read-only)")  # Instructor at launch
    shot(ta, "moodle-02-ta-read-only")

    owner.reload()  # the wizard page again (its token is still valid); go to the Staff page
    owner.locator("nav.tabs summary", has_text="Set-up").click()  # staff tabs past the daily ones are grouped
    owner.get_by_role("link", name="Staff", exact=True).click()
    row = owner.locator("tr", has_text="Priya Sharma")
    expect(row).to_contain_text("Instructor")  # the LMS role at launch
    row.locator("select").select_option("head_ta")
    row.get_by_role("button", name="Save").click()
    expect(owner.get_by_role("status")).to_contain_text("Staff level saved")
    expect(owner.locator("tr", has_text="Priya Sharma")).to_contain_text("set by the owner")
    shot(owner, "moodle-03-staff-page")

    ta.reload()
    expect(ta.locator("header .who")).to_contain_text("Head TA")
    live_server.check_jobs()
