"""A walk-in joins a workshop in Chromium with the access code and a display name (no LMS), and reaches their
running workspace: the join page, the participant page, then the workspace page once simulated AWS runs it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from classroom.models import Person
from classroom.roles import StaffLevel
from classroom.services.workshops import WorkshopValues, create_workshop
from tests.browser.conftest import Browser, LiveServer, shot
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

pytestmark = pytest.mark.browser
RUNNING_TIMEOUT_MS = 90_000


def _workshop(live: LiveServer) -> str:
    """Dr. Martinez's course and a workshop made from it (as her form does); returns the access code."""
    now = datetime.now(UTC)
    with live.sessions() as session:
        course = make_course(session)
        make_policy(session, course)
        owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
        values = WorkshopValues(title="Intro to ML on the cloud", starts_at=now - timedelta(minutes=5),
                                hours=Decimal(3), max_participants=30, budget=Decimal(150),
                                template_id="ml-cpu-student")  # fmt: skip
        _, code = create_workshop(session, course, session.get(Person, owner.id), values, now)
        session.commit()
    return code


def test_walk_in_joins_with_the_code_and_reaches_a_running_workspace(live_server: LiveServer, browser: Browser) -> None:
    code = _workshop(live_server)
    page = browser.new_page(third_party_cookies=False)
    page.goto(live_server.base_url + "/workshop/join")
    page.get_by_label("Access code").fill("not-the-code")
    page.get_by_label("Display name").fill("Ada Lovelace")
    page.get_by_role("button", name="Join and start my workspace").click()
    assert "not recognised" in page.locator("[role=alert]").inner_text()  # and the form is still there to retry
    page.get_by_label("Access code").fill(code.lower())
    page.get_by_role("button", name="Join and start my workspace").click()
    page.get_by_text("Welcome, Ada Lovelace").wait_for()
    shot(page, "workshop-01-participant-page")
    page.get_by_role("link", name="Open my workspace").click()
    deadline = time.monotonic() + RUNNING_TIMEOUT_MS / 1000
    while page.locator("main h2", has_text="Running").count() == 0:  # the workshop's last-day notice is an h2 too
        assert time.monotonic() < deadline, live_server.describe()
        page.wait_for_timeout(1000)
        page.reload()
    shot(page, "workshop-02-running-workspace")
    live_server.check_jobs()
