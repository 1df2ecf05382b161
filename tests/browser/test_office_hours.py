"""Office hours in Chromium through the Demo LMS (third-party cookies blocked): Sophie asks for help from her
workspace, Alex (head TA) sees her on the dashboard, claims the request and sends her a message, Sophie reads it.
Screenshots: tests/browser/screenshots/office-*.png.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import FrameLocator, Page, expect
from sqlalchemy import select, update

from classroom.models import Enrollment, HelpRequest, Person, StaffMessage, Workspace
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import WorkspaceState
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in

pytestmark = pytest.mark.browser


def tool(page: Page) -> FrameLocator:
    return page.frame_locator("iframe.tool-frame")


def open_tool(page: Page, persona: str) -> FrameLocator:
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    frame = tool(page)
    expect(frame.locator("header .who")).to_contain_text(persona, timeout=LAUNCH_TIMEOUT_MS)
    return frame


def _person(live: LiveServer, given: str) -> int:
    with live.sessions() as s:
        return int(s.scalar(select(Person.id).where(Person.given_name == given)))


def test_sophie_asks_alex_claims_on_the_dashboard_and_messages_her(live_server: LiveServer, browser: Browser) -> None:
    owner = browser.new_page(third_party_cookies=False)
    sign_in(owner, live_server, "Jennifer Martinez")
    open_tool(owner, "Jennifer Martinez")  # the owner's first launch makes the course
    live_server.ensure_policies()

    # Sophie opens the tool; she has a (stopped) workspace from an earlier week.
    sophie_page = browser.new_page(third_party_cookies=False)
    sign_in(sophie_page, live_server, "Sophie Martinez")
    open_tool(sophie_page, "Sophie Martinez")
    shot(sophie_page, "office-00-sophie-home")
    sophie = _person(live_server, "Sophie")
    with live_server.sessions() as s:
        course_id = s.scalar(select(Enrollment.course_id).where(Enrollment.person_id == sophie))
        s.add(Workspace(course_id=course_id, person_id=sophie, link_key="template:ml-cpu-student",
                        template_id="ml-cpu-student", instance_type="t3.medium", volume_gb=30, region="us-east-1",
                        state=WorkspaceState.STOPPED, link_title="CS 229 workspace",
                        state_changed_at=datetime.now(UTC) - timedelta(hours=3)))  # fmt: skip
        s.commit()
    sophie_page.bring_to_front()
    frame = open_tool(sophie_page, "Sophie Martinez")
    # The course link's page already shows the same link: wait for the new document, or the next click can land
    # on the old one as it unloads (and nothing happens).
    with sophie_page.expect_event("framenavigated", predicate=lambda f: "/app/workspaces" in f.url):
        frame.get_by_role("link", name="My workspace").click()
    frame.get_by_role("link", name="Ask a TA for help…").click()
    expect(frame.get_by_role("heading", name="Ask for help")).to_be_visible()
    frame.get_by_label("What do you need help with?").fill("My training loss is NaN after epoch 2.")
    frame.get_by_label("File (optional, in your workspace)").fill("homework/hw3/train.py")
    frame.get_by_label("Line (optional)").fill("42")
    assert frame.locator("html").evaluate("e => e.clientWidth") > 800  # laid out at the LMS column's width
    shot(sophie_page, "office-01-sophie-asks")
    frame.get_by_role("button", name="Ask for help").click()
    expect(frame.get_by_role("status")).to_contain_text("Your request was sent")
    shot(sophie_page, "office-02-sophie-asked")

    # Alex, head TA, opens the dashboard: Sophie is flagged with an open request.
    alex_page = browser.new_page(third_party_cookies=False)
    sign_in(alex_page, live_server, "Alex Thompson")
    open_tool(alex_page, "Alex Thompson")
    with live_server.sessions() as s:
        s.execute(
            update(Enrollment)
            .where(Enrollment.person_id == _person(live_server, "Alex"))
            .values(level=StaffLevel.HEAD_TA, level_pinned=True)
        )  # fmt: skip  (the owner's choice)
        s.commit()
    frame = open_tool(alex_page, "Alex Thompson")
    expect(frame.locator("header .who")).to_contain_text("Head TA")
    frame.get_by_role("link", name="Dashboard", exact=True).click()
    row = frame.locator(f"tr#student-{sophie}")
    expect(row).to_contain_text("open request")
    expect(row).to_contain_text("open help request")
    expect(row.get_by_role("link", name="Debug Sophie Martinez")).to_have_attribute(
        "href", f"/app/students/{sophie}/debug?t=" + row.get_by_role("link", name="Debug Sophie Martinez")
        .get_attribute("href").split("?t=")[1]  # type: ignore[union-attr]
    )  # fmt: skip
    frame.get_by_label("Flag").select_option("help_open")
    frame.get_by_role("button", name="Show").click()
    expect(frame.locator("table.dashboard tbody tr")).to_have_count(1)
    shot(alex_page, "office-03-alex-dashboard")
    frame.locator(f"tr#student-{sophie}").get_by_role("link", name="open request").click()
    frame.get_by_role("button", name="Claim Sophie Martinez's request").click()
    expect(frame.get_by_role("status")).to_contain_text("Request claimed")
    expect(frame.locator("li.card", has_text="Sophie Martinez")).to_contain_text("claimed by Alex Thompson")
    shot(alex_page, "office-04-alex-claimed")
    frame.get_by_role("link", name="Message Sophie Martinez").click()
    frame.get_by_label("Subject").fill("Batch size in train.py")
    frame.get_by_label("Message").fill("Your batch size is 4096; use 64 (line 42) and the loss stays finite.")
    frame.get_by_label("File (optional)").fill("homework/hw3/train.py")
    frame.get_by_label("Line (optional)").fill("42")
    frame.get_by_role("button", name="Send message").click()
    expect(frame.get_by_role("status")).to_contain_text("Message sent")
    expect(frame.locator("li", has_text="Batch size in train.py")).to_contain_text("unread")
    shot(alex_page, "office-05-alex-sent")

    # Sophie sees the message in the tool (and it is now read for Alex).
    sophie_page.bring_to_front()  # a window left in the background screenshots its cross-site frame half-drawn
    frame = open_tool(sophie_page, "Sophie Martinez")
    frame.get_by_role("link", name="Messages", exact=True).click()
    expect(frame.get_by_role("heading", name="Batch size in train.py")).to_be_visible()
    expect(frame.locator("li.card").get_by_text("use 64 (line 42)")).to_be_visible()
    shot(sophie_page, "office-06-sophie-reads")
    with live_server.sessions() as s:
        msg = s.scalar(select(StaffMessage))
        req = s.scalar(select(HelpRequest))
        assert msg is not None and msg.read_at is not None and msg.help_request_id == req.id  # type: ignore[union-attr]
        assert req is not None and req.status == "claimed"
    live_server.check_jobs()
