"""After term end Dr. Martinez opens the Restore tab, restores Emily for 7 days (no top-up: CS 229 has no
unallocated budget) and sees the open restore listed. Real Chromium in the Demo LMS's iframe; axe checks every
page opened."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from classroom.models import Course, CoursePolicy, Person, StudentRestore, Workspace, WorkspaceArchive
from classroom.workspaces.lifecycle import WorkspaceState
from provisioning.aws import AwsBackend
from provisioning.aws_archive import archive_object_key
from tests.browser.conftest import Browser, LiveServer, shot
from tests.browser.test_platform_storage import open_tool

pytestmark = pytest.mark.browser


def test_an_instructor_restores_emily_for_seven_days(live_server: LiveServer, browser: Browser, backend: AwsBackend):
    page = browser.new_page(third_party_cookies=True)
    open_tool(page, live_server, "Emily Chen", "Student")  # Emily has been in the course
    page.get_by_role("button", name="Sign out").click()
    open_tool(page, live_server, "Jennifer Martinez", "Instructor")
    live_server.ensure_policies()
    with live_server.sessions() as session:  # the term has closed; Emily's home was archived
        course = session.scalar(select(Course))
        emily = session.scalar(select(Person).where(Person.name.like("Emily%")))
        past = datetime.now(UTC) - timedelta(days=2)
        old = Workspace(course_id=course.id, person_id=emily.id, link_key="hw1", template_id="ml-cpu-student",
                        instance_type="t3.medium", volume_gb=30, region="us-east-1", state=WorkspaceState.TERMINATED,
                        instance_id="i-0emily", created_at=past, state_changed_at=past)  # fmt: skip
        session.add(old)
        session.flush()
        body = b"emily's home"
        key = archive_object_key(f"c{course.id}", old.id)
        backend.s3.put_object(Bucket=backend.bucket, Key=key, Body=body)
        session.add(WorkspaceArchive(workspace_id=old.id, course_id=course.id, s3_key=key, retain_days=365,
                                     sha256=hashlib.sha256(body).hexdigest(), size_bytes=len(body)))  # fmt: skip
        session.get(CoursePolicy, course.id).closed_at = past
        session.commit()

    page.reload()
    frame = page.frame_locator("iframe.tool-frame")
    frame.locator("nav.tabs summary", has_text="Term end").click()  # staff tabs past the daily ones are grouped
    frame.get_by_role("link", name="Restore").click()
    expect(frame.get_by_role("heading", name="Restore a student")).to_be_visible()
    expect(frame.locator("main")).to_contain_text("Emily Chen")
    frame.get_by_label("Student").select_option(label="Emily Chen")
    frame.get_by_label("Days (1 to 60)").fill("7")
    frame.get_by_role("button", name="Restore").click()
    expect(frame.locator("main table").last).to_contain_text("open, workspace on its way")
    shot(page, "restore-emily")
    with live_server.sessions() as session:
        (restore,) = session.scalars(select(StudentRestore)).all()
        assert restore.days == 7 and restore.workspace_id is not None
