"""The Integrity tab in Chromium inside the Demo LMS: Dr. Martinez opens hw5's report (the `make run` scene)
and reads David's five indicators; Priya (read-only TA) has no Integrity tab. Screenshots:
tests/browser/screenshots/integrity-*.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dev.demo_lms.origins import issuer
from dev.demo_lms.seed import generated_students
from dev.integrity_seed import seed_hw5
from provisioning.aws_evidence import store_for
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in

pytestmark = pytest.mark.browser


def _open_tool(page: Page):  # type: ignore[no-untyped-def]
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    return page.frame_locator("iframe.tool-frame")


def test_instructor_reads_the_hw5_report_and_a_read_only_ta_cannot(live_server: LiveServer, browser: Browser, backend):  # type: ignore[no-untyped-def]
    classmates = [(f"{p.given_name} {p.family_name}", p.email) for p in generated_students()[:5]]
    with live_server.sessions() as session:
        assert "seeded" in seed_hw5(session, store_for(backend), issuer(live_server.settings), classmates)
        session.commit()
    live_server.ensure_policies()
    page = browser.new_page(third_party_cookies=False)
    sign_in(page, live_server, "Jennifer Martinez")
    tool = _open_tool(page)
    tool.locator("nav.tabs summary", has_text="Tools").click()  # staff tabs past the daily ones are grouped
    tool.get_by_role("link", name="Integrity").click()
    expect(tool.get_by_role("heading", name="Academic integrity")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    shot(page, "integrity-01-page")
    tool.get_by_role("button", name="Make the report").click()
    expect(tool.get_by_role("heading", name="Academic integrity report: Homework 5")).to_be_visible(
        timeout=LAUNCH_TIMEOUT_MS
    )
    david = tool.locator("section.card", has=tool.get_by_role("heading", name="David Kim (david.kim@university.edu)"))
    expect(david.locator("h3 + ol > li")).to_have_count(5)
    expect(david).to_contain_text("Workspace created late")
    expect(tool.locator("body")).to_contain_text("indicators for investigation, not findings")
    shot(page, "integrity-02-report")
    tool.locator("nav.tabs summary", has_text="Tools").click()  # staff tabs past the daily ones are grouped
    tool.get_by_role("link", name="Integrity").click()
    tool.get_by_role("link", name="Run 1").click()  # the seeded run
    tool.get_by_role("link", name="Side by side").click()
    expect(
        tool.get_by_role("heading", name=re.compile(r"David Kim and Emily Chen: 100%|Emily Chen and David Kim: 100%"))
    ).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    assert tool.locator("pre mark").count() >= 2
    shot(page, "integrity-03-side-by-side")

    other = browser.new_page(third_party_cookies=False)
    sign_in(other, live_server, "Priya Sharma")
    ta_tool = _open_tool(other)
    expect(ta_tool.locator("nav.tabs")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    expect(ta_tool.get_by_role("link", name="Integrity", include_hidden=True)).to_have_count(0)  # nor in a closed group
    shot(other, "integrity-04-read-only-ta")
