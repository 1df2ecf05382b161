"""On the term's last day Emily's page shows the term-end warning; Priya (TA) opens the Archives tab and sees
Emily's archived home read-only. Real Chromium in the Demo LMS's iframe; axe checks every page opened."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from classroom.models import Course, Person
from provisioning.agent_archive import record_archive
from provisioning.aws import AwsBackend
from provisioning.aws_archive import ArchiveResult, archive_object_key
from tests.browser.conftest import Browser, LiveServer, shot, sign_in
from tests.browser.test_platform_storage import open_tool
from tests.support.budget import make_running

pytestmark = pytest.mark.browser


def test_the_last_day_banner_and_the_archives_tab(live_server: LiveServer, browser: Browser, backend: AwsBackend):
    page = browser.new_page(third_party_cookies=True)
    open_tool(page, live_server)  # Priya's launch makes the course
    live_server.ensure_policies()
    with live_server.sessions() as session:
        course = session.scalar(select(Course))
        course.time_zone, course.term_end = "UTC", datetime.now(UTC).date()  # the term ends tonight
        session.commit()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, "Emily Chen")
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    frame = page.frame_locator("iframe.tool-frame")
    notice = frame.get_by_role("note")
    expect(notice).to_contain_text("The term is ending")
    expect(notice).to_contain_text("Your budget: $0.00 spent of $24.00")
    shot(page, "term-end-banner")
    page.get_by_role("button", name="Sign out").click()

    with live_server.sessions() as session:
        course = session.scalar(select(Course))
        emily = session.scalar(select(Person).where(Person.name.like("Emily%")))
        ws = make_running(session, course.id, emily.id, datetime.now(UTC), link="hw1")
        ws.link_title = "HW1: Linear Regression"
        session.commit()
        body = b"emily's home"
        key = archive_object_key(f"c{course.id}", ws.id)
        backend.s3.put_object(Bucket=backend.bucket, Key=key, Body=body)
        record_archive(session, ws, ArchiveResult(key, hashlib.sha256(body).hexdigest(), len(body)), 365)

    open_tool(page, live_server)
    frame = page.frame_locator("iframe.tool-frame")
    frame.locator("nav.tabs summary", has_text="Term end").click()  # staff tabs past the daily ones are grouped
    frame.get_by_role("link", name="Archives").click()
    expect(frame.get_by_role("heading", name="Archived homes")).to_be_visible()
    expect(frame.locator("main")).to_contain_text(key)
    expect(frame.locator("main")).to_contain_text("HW1: Linear Regression")
    expect(frame.get_by_role("button", name="Download")).to_have_count(0)  # a TA only looks
    shot(page, "archives-ta")
    live_server.check_jobs()
