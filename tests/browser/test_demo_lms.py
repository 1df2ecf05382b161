"""The Demo LMS end to end in Chromium, for one instructor and one student (third-party cookies blocked, so every
launch goes through platform storage): set-up wizard, deep linking, first click to a running workspace in
simulated AWS, and the educational refusal of a blocked template. Screenshots: tests/browser/screenshots/demo-*.png.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import FrameLocator, Page, expect
from sqlalchemy import func, select

from classroom.models import CoursePolicy, Workspace
from classroom.workspaces.lifecycle import WorkspaceState
from dev.demo_lms.models import DemoLineItem, DemoLink
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in

pytestmark = pytest.mark.browser

HW1 = "HW1: Linear regression"
GPU = "Final project: GPU training"
RUNNING_TIMEOUT_MS = 90_000  # worker + reconcile tick every 0.5 s; the page polls every 2 s, updates in place


def tool(page: Page) -> FrameLocator:
    return page.frame_locator("iframe.tool-frame")


def nav_link(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("nav.course-nav").get_by_role("link", name=title, exact=True)


def add_assignment(page: Page, template_label: str, title: str, due: str, points: str, shot_name: str) -> None:
    """Deep linking: 'Add assignment from Cloud Workstation', fill the tool's form in the iframe, add it."""
    page.get_by_role("link", name="Add assignment from Cloud Workstation").click()
    frame = tool(page)
    expect(frame.get_by_role("heading", name="Add a Cloud Workstation assignment")).to_be_visible(
        timeout=LAUNCH_TIMEOUT_MS
    )
    shot(page, shot_name + "-empty")
    frame.locator("label.choice", has_text=template_label).locator("input[name=template]").check()
    frame.locator("#title").fill(title)
    frame.locator("#due_at").fill(due)
    frame.locator("#points").fill(points)
    shot(page, shot_name + "-filled")
    frame.get_by_role("button", name="Add to course").click()
    # The Demo LMS answers "Assignment added" in the iframe, then reloads the course page around it.
    expect(nav_link(page, title)).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)


def test_instructor_sets_up_and_adds_assignment_then_student_runs_workspace(
    live_server: LiveServer, browser: Browser
) -> None:
    page = browser.new_page(third_party_cookies=False)

    # 1. Dr. Martinez opens Cloud Workstation: her first launch is the set-up wizard, inside the iframe.
    sign_in(page, live_server, "Jennifer Martinez")
    shot(page, "demo-01-instructor-course")
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    expect(frame.get_by_role("heading", name=re.compile(r"^Set up Cloud Workstation for"))).to_be_visible(
        timeout=LAUNCH_TIMEOUT_MS
    )
    expect(frame.locator("header .who")).to_contain_text("Jennifer Martinez")
    start = date.today() - timedelta(days=1)  # the course is in Los Angeles: UTC "today" may not have begun there
    frame.locator("#term_start").fill(start.isoformat())
    frame.locator("#term_end").fill((start + timedelta(days=110)).isoformat())
    frame.locator("select[name=time_zone]").select_option("America/Los_Angeles")
    expect(frame.locator("select[name=template_ml-cpu-student]")).to_have_value("approved")
    expect(frame.locator("select[name=template_gpu-ml-workstation]")).to_have_value("blocked")
    shot(page, "demo-02-setup-wizard")
    frame.locator("fieldset", has_text="4. Student environment").scroll_into_view_if_needed()
    shot(page, "demo-02b-setup-wizard-templates")
    frame.get_by_role("button", name="Save course settings").click()
    expect(frame.get_by_role("heading", name="Teaching staff")).to_be_visible()  # the instructor's course home
    expect(frame.locator(".facts")).to_contain_text("America/Los_Angeles")
    shot(page, "demo-03-setup-saved-home")
    with live_server.sessions() as s:
        policy = s.scalar(select(CoursePolicy))
        assert policy is not None and policy.default_template == "ml-cpu-student"
        assert policy.templates["gpu-ml-workstation"] == "blocked"

    # 2. She adds HW1 through deep linking (template, title, due date, points) and sees it in the course.
    due = (start + timedelta(days=14)).isoformat() + "T23:59"
    add_assignment(page, "ML CPU workspace", HW1, due, "10", "demo-04-deep-link-form")
    expect(page.locator("nav.course-nav li", has_text=HW1).locator(".due")).to_contain_text("Due ")
    shot(page, "demo-05-assignment-in-course")
    # A GPU assignment too (the course policy blocks that template for students).
    add_assignment(page, "GPU ML workstation", GPU, "", "", "demo-06-deep-link-gpu")
    with live_server.sessions() as s:
        links = {link.title: link for link in s.scalars(select(DemoLink).where(DemoLink.kind == "assignment"))}
        assert links[HW1].custom["template"] == "ml-cpu-student" and links[HW1].due_at is not None
        assert links[GPU].custom["template"] == "gpu-ml-workstation"
        item = s.scalar(select(DemoLineItem).where(DemoLineItem.link_id == links[HW1].id))
        assert item is not None and item.score_maximum == 10.0

    # 3. Emily Chen clicks HW1: the page says what would start and what it costs; nothing starts until she
    #    presses Start, then the page follows her workspace to Running.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "Emily Chen")
    nav_link(page, HW1).click()
    frame = tool(page)
    expect(frame.get_by_role("heading", name=HW1)).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    expect(frame.locator("header .who")).to_contain_text("Emily Chen")
    expect(frame.get_by_text("Nothing runs until you press Start")).to_be_visible()
    with live_server.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Workspace)) == 0  # the visit started nothing
    shot(page, "demo-07-student-first-click")
    frame.get_by_role("button", name="Start my workspace").click()
    expect(frame.locator("#ws")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    frame.locator("#ws").evaluate("() => { window.cwcSameDocument = true; }")  # gone if the page reloads
    try:
        expect(frame.locator("#ws-label")).to_have_text("Running", timeout=RUNNING_TIMEOUT_MS)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- server side:\n{live_server.describe()}") from None
    assert frame.locator("#ws").evaluate("() => window.cwcSameDocument === true")  # updated in place, no reload
    expect(frame.locator(".steps li")).to_have_text([re.compile(r"\(done\)$")] * 3)  # the state in words
    expect(frame.locator("#ws-status")).to_have_text(re.compile("^Your workspace: Running"))  # only this is announced
    # No SSH command without a key: the page asks for one; after creating it the keys page lists it.
    expect(frame.locator("#ws-nokey")).to_contain_text("create or upload a key first")
    expect(frame.locator("#ws-ssh")).to_have_count(0)
    frame.get_by_role("link", name="Create or upload my SSH key").click()
    expect(frame.get_by_text("You have no SSH key yet.")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    with page.expect_download() as download:
        frame.get_by_role("button", name="Create and download my key").click()
    assert download.value.suggested_filename.startswith("cwc_")
    expect(frame.get_by_text("(generated)")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)  # reloaded: listed
    expect(frame.get_by_text("You have no SSH key yet.")).to_have_count(0)
    nav_link(page, HW1).click()
    frame = tool(page)
    ssh = frame.locator("#ws-ssh")
    expect(ssh).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    expect(ssh).to_have_text(re.compile(r"^ssh -i ~/\.ssh/cwc_\S+ ubuntu@\d+\.\d+\.\d+\.\d+$"))
    expect(frame.get_by_role("link", name="Stop workspace")).to_be_visible()
    shot(page, "demo-08-student-workspace-running")
    live_server.check_jobs()

    # 4. The GPU assignment: refused with the educational message; nothing starts.
    nav_link(page, GPU).click()
    frame = tool(page)
    alert = frame.get_by_role("alert")
    expect(alert.get_by_role("heading", name="Launch blocked: template not approved")).to_be_visible(
        timeout=LAUNCH_TIMEOUT_MS
    )
    expect(alert).to_contain_text("GPU ML workstation")
    expect(alert).to_contain_text("Nothing was started and nothing was charged.")
    expect(frame.get_by_role("heading", name=re.compile("^Approved templates for"))).to_be_visible()
    expect(frame.get_by_text("ML CPU workspace (t3.medium")).to_be_visible()
    shot(page, "demo-09-student-gpu-blocked")
    with live_server.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Workspace)) == 1
        ws = s.scalar(select(Workspace))
        assert ws is not None and ws.state is WorkspaceState.RUNNING and ws.template_id == "ml-cpu-student"
    live_server.check_jobs()

    # 5. The course link is Emily's home: her running workspace with Stop, and nothing new started.
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    expect(frame.get_by_role("heading", name="My workspace")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    expect(frame.get_by_role("link", name="Stop workspace")).to_be_visible()
    # The tool sent lti.frameResize to the Demo LMS's origin, which sized the frame to the page (no inner scroll).
    iframe = page.locator("iframe.tool-frame")
    expect(iframe).to_have_attribute("data-resized-to", re.compile(r"^\d+$"))
    inner = frame.locator("html").evaluate("el => el.scrollHeight")
    expect(iframe).to_have_attribute("data-resized-to", str(max(300, inner)))
    assert abs(iframe.evaluate("el => el.getBoundingClientRect().height") - max(300, inner)) <= 2
    with live_server.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Workspace)) == 1

    # 6. David opens the course link only to read it: his home starts nothing; the final-project template is a
    #    neutral "available on request" with its cost and projection, before he asks.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "David Kim")
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    expect(frame.get_by_role("heading", name="My workspace")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    expect(frame.get_by_role("button", name="Start my workspace")).to_be_visible()
    offer = frame.get_by_role("heading", name=re.compile("ML final-project workspace"))
    expect(offer).to_contain_text("(available on request)")
    expect(
        frame.get_by_text(re.compile(r"a day if left on 24/7\. .*(days if left running 24/7|rest of the term)")).first
    ).to_be_visible()
    expect(frame.get_by_role("button", name="Ask for ML final-project workspace")).to_be_visible()
    expect(frame.get_by_text("Launch blocked")).to_have_count(0)
    with live_server.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Workspace)) == 1  # still only Emily's
    live_server.check_jobs()
