"""Dr. Martinez reads the final report and the usage-beside-grades chart in the LMS frame (axe checks each page)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from classroom.models import Course, LmsGrade, LmsLineItem, Person, SpendDaily
from classroom.roles import StaffLevel
from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, frame_settled, shot, sign_in
from tests.browser.test_demo_lms import nav_link, tool
from tests.support.factories import make_person

pytestmark = pytest.mark.browser
D = Decimal


def _term(live: LiveServer) -> None:
    """Three students with spend and an HW1 score in the course the launch made."""
    with live.sessions() as s:
        course = s.scalar(select(Course).order_by(Course.id))
        item = LmsLineItem(course_id=course.id, label="HW1", score_maximum=D(10))
        s.add(item)
        s.flush()
        for name, spent, hours, score in (("Emily Chen", "22.80", 40, "9"), ("David Kim", "12.40", 25, "7"),
                                          ("Sophie Martinez", "18.10", 31, "8")):  # fmt: skip
            person = make_person(s, course, name=name, level=StaffLevel.STUDENT)
            s.add(SpendDaily(course_id=course.id, person_id=person.id, day=datetime.now(UTC).date(),
                             compute=D(spent), storage=D(0), running_seconds=D(hours * 3600)))  # fmt: skip
            s.add(LmsGrade(course_id=course.id, line_item_id=item.id, person_id=person.id, score_given=D(score),
                           score_maximum=D(10)))  # fmt: skip
        assert s.scalar(select(Person.id).where(Person.name == "Jennifer Martinez")) is not None
        s.commit()


def test_instructor_reads_the_final_report_and_the_grade_chart(live_server: LiveServer, browser: Browser) -> None:
    page = browser.new_page(third_party_cookies=False)
    sign_in(page, live_server, "Jennifer Martinez")
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    expect(frame.locator("header .who")).to_contain_text("Jennifer Martinez", timeout=LAUNCH_TIMEOUT_MS)
    live_server.ensure_policies()
    _term(live_server)
    nav_link(page, "Cloud Workstation").click()
    frame = tool(page)
    nav = frame.locator("nav.tabs")  # staff tabs past the daily ones are grouped in <details> disclosures
    nav.locator("summary", has_text="Set-up").click()
    nav.locator("summary", has_text="Term end").click()
    expect(nav.locator("details[open] > summary")).to_have_text(["Term end"])  # one group open at a time
    nav.locator("summary", has_text="Term end").press("Escape")
    expect(nav.locator("details[open]")).to_have_count(0)
    expect(nav.locator("summary", has_text="Term end")).to_be_focused()
    nav.locator("summary", has_text="Term end").press("Enter")  # the keyboard opens it again
    frame.get_by_role("link", name="Final report").click()
    expect(frame.get_by_role("heading", name="Budget")).to_be_visible(timeout=LAUNCH_TIMEOUT_MS)
    expect(frame.locator("main")).to_contain_text("Total spent: $53.30")
    expect(frame.locator("main")).to_contain_text("Total compute hours: 96.0 h")
    frame_settled(page)
    shot(page, "final-report-01-page")
    frame.get_by_role("link", name="Usage beside grades").click()
    expect(frame.locator("svg.chart circle")).to_have_count(3)
    expect(frame.locator("main")).to_contain_text("r = ")
    frame_settled(page)  # the frame resizes to its content; only for the screenshot
    shot(page, "final-report-02-grades")
    live_server.check_jobs()
