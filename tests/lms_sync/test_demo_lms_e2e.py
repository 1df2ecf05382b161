"""Issue 5's "done when", end to end against the Demo LMS: the tool and the Demo LMS served over real HTTP, installed
by Dynamic Registration, launched by a scripted browser (requests, no JavaScript: it follows the same forms).

The roster syncs the 50 students of CS 229, a dropped student's running workspace is stopped, Emily sees her next
deadline, and a grade and usage entered in the tool appear in the Demo LMS gradebook."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from classroom.db import make_session_factory
from classroom.jobs.context import use_context
from classroom.jobs.queue import ENFORCEMENT_QUEUE, get_queue
from classroom.models import (
    Course,
    DueDate,
    DueSource,
    Enrollment,
    EnrollmentStatus,
    LmsLineItem,
    Person,
    SpendDaily,
    StaffLevel,
    Workspace,
    WorkspaceFolder,
)
from classroom.services.registration import create_invite
from classroom.workspaces.lifecycle import WorkspaceState
from config.settings import Settings
from dev.demo_lms.bootstrap import auto_register
from dev.demo_lms.models import DemoLineItem, DemoLink, DemoMember, DemoScore
from dev.demo_lms.seed import NAV_LINK_ID, personas
from lms_sync.context import LmsContext
from lms_sync.jobs import passback_course, post_usage_nightly, refresh_due_dates, sync_course_roster
from tests.lms_sync.conftest import FAST
from tests.support.serving import serve_in_thread

USERS = {p.email.split("@")[0]: p.user_id for p in personas()}


@dataclass
class Live:
    settings: Settings
    tool: str
    demo: str


@pytest.fixture
def live(database_url, redis_url, redis, engine):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(
        env="test",
        secret_key="live-secret-" + "y" * 40,
        base_url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        redis_url=redis_url,
        demo_lms=True,
        log_json=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    serve_in_thread(server)
    use_context(LmsContext(settings, make_session_factory(engine), redis, policy=FAST))
    yield Live(settings, f"http://127.0.0.1:{port}", f"http://localhost:{port}/demo-lms")
    use_context(None)
    server.shutdown()
    app.extensions["cwc"].engine.dispose()


class Browser:
    """A person at a browser: Demo LMS cookies on localhost, tool cookies on 127.0.0.1."""

    def __init__(self, live: Live, who: str) -> None:
        self.live, self.http = live, requests.Session()
        page = self.http.get(live.demo + "/").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        resp = self.http.post(live.demo + "/sign-in", data={"csrf": csrf, "persona": USERS[who]}, allow_redirects=False)
        assert resp.status_code == 303, resp.text[:300]

    def launch(self, **course_args: Any) -> str:
        """Open a link (or deep linking) in the course; follow login, platform auth and launch; the tool token."""
        course = self.http.get(self.live.demo + "/course", params=course_args).text
        frame = html.unescape(re.search(r'<iframe class="tool-frame" src="([^"]+)"', course).group(1))
        login = self.http.get(frame, allow_redirects=False)
        assert login.status_code == 200, login.text[:300]
        auth_url = json.loads(re.search(r'id="cwc-login">(.*?)</script>', login.text, re.S).group(1))["auth_url"]
        auth = self.http.get(auth_url)
        assert auth.status_code == 200, auth.text[:500]
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', auth.text))
        action = html.unescape(re.search(r'<form id="demo-autosubmit" method="post" action="([^"]+)"', auth.text)[1])
        done = self.http.post(action, data={k: html.unescape(v) for k, v in fields.items()}, allow_redirects=False)
        assert done.status_code == 303, done.text[:500]
        self.location = done.headers["Location"]
        return parse_qs(urlparse(self.location).query)["t"][0]

    def tool(self, path: str, token: str, **params: Any) -> requests.Response:
        return self.http.get(self.live.tool + path, params={"t": token, **params})

    def post(self, path: str, token: str, **data: Any) -> requests.Response:
        return self.http.post(
            self.live.tool + path, data={"t": token, "csrf_token": self.csrf(token), **data}, allow_redirects=False
        )

    def csrf(self, token: str) -> str:
        """The CSRF value the tool derives from a tool token (as its pages embed it)."""
        return hmac.new(self.live.settings.secret_key.encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def demo_db(session, model, **where):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(model).filter_by(**where)).all()


def test_done_when_in_the_demo_lms(live, session, redis):  # noqa: PLR0915 - one story, told in order
    invite = create_invite(session, note="Demo LMS")
    session.commit()
    installed = auto_register(live.settings, f"{live.tool}/lti/register?invite={invite}")
    assert installed["client_id"]

    # Dr. Martinez opens Cloud Workstation from the course: the roster is stale, a sync is queued
    martinez = Browser(live, "jennifer.martinez")
    nav = session.scalar(select(DemoLink.id).where(DemoLink.resource_link_id == NAV_LINK_ID))
    token = martinez.launch(link=nav)
    course_id = session.scalar(select(Course.id))
    assert get_queue(redis).get_job_ids() == [f"lms-roster-{course_id}"]
    result = sync_course_roster(course_id, 0)
    assert result["added"] == 53 and result["pages"] == 1
    students = session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(
            Enrollment.course_id == course_id,
            Enrollment.level == StaffLevel.STUDENT,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
    )
    assert students == 50
    levels = dict(session.execute(select(Person.email, Enrollment.level).join(Enrollment)).all())
    assert levels["alex.thompson@university.edu"] is StaffLevel.TA
    assert levels["jennifer.martinez@university.edu"] is StaffLevel.OWNER

    # she adds a graded assignment with a due date through deep linking
    due_local = (datetime.now(UTC) + timedelta(days=6)).replace(hour=23, minute=59, second=0, microsecond=0)
    picker_token = martinez.launch(deep_link=1)
    form = martinez.http.post(
        live.tool + "/lti/deep-link",
        data={
            "t": picker_token,
            "csrf_token": martinez.csrf(picker_token),
            "template": "ml-cpu-student",
            "title": "Homework 1 - Linear Regression",
            "due_at": due_local.strftime("%Y-%m-%dT%H:%M"),
            "points": "10",
            "time_zone": "UTC",  # before the set-up wizard the form asks for the course's zone
        },
    )
    assert form.status_code == 200, form.text[:500]
    jwt_value = re.search(r'name="JWT" value="([^"]+)"', form.text)[1]
    back = martinez.http.post(live.demo + "/deep-link-return", data={"JWT": jwt_value})
    assert back.status_code == 200, back.text[:500]
    link = session.scalar(select(DemoLink).where(DemoLink.kind == "assignment"))
    assert link is not None

    # Emily opens it: her page shows her next deadline, with where it came from
    emily = Browser(live, "emily.chen")
    emily_token = emily.launch(link=link.id)
    assert refresh_due_dates(course_id)["line_items"] >= 1  # the AGS line item and its end date, too
    sources = {d.source for d in demo_db(session, DueDate)}
    assert sources == {DueSource.LAUNCH_CUSTOM, DueSource.AGS_LINE_ITEM}
    home = emily.tool("/app/home", emily_token).text
    assert "Upcoming deadlines" in home and "Homework 1 - Linear Regression" in home
    assert "in 6 days" in home or "in 5 days" in home
    assert "assignment link" in home and "LMS gradebook column" in home

    # a grade entered in the tool (by the instructor) appears in the Demo LMS gradebook
    item = session.scalar(select(LmsLineItem).where(LmsLineItem.label == "Homework 1 - Linear Regression"))
    assert item is not None and item.score_maximum == Decimal(10)
    emily_id = session.scalar(select(Person.id).where(Person.email == "emily.chen@university.edu"))
    saved = martinez.post(
        f"/sync/grades/{item.id}", token, **{f"score-{emily_id}": "9.5", f"comment-{emily_id}": "Nice fit"}
    )
    assert saved.status_code == 303
    assert passback_course(course_id)["posted"] == 1
    scores = demo_db(session, DemoScore, user_id=USERS["emily.chen"])
    assert [(s.score_given, s.score_maximum, s.comment) for s in scores] == [(9.5, 10.0, "Nice fit")]
    gradebook = martinez.http.get(live.demo + "/gradebook")
    assert gradebook.status_code == 200 and "Homework 1 - Linear Regression" in gradebook.text

    # usage: the instructor turns it on (as comments, the default); Emily's line rides on her Homework 1 score
    assert martinez.post("/sync/usage", token, usage_passback="on", usage_mode="comment").status_code == 303
    emily_ws = Workspace(
        course_id=course_id,
        person_id=emily_id,
        link_key="template:ml-cpu-student",
        template_id="ml-cpu-student",
        instance_type="t3.medium",
        volume_gb=30,
        region="us-east-1",
        state=WorkspaceState.STOPPED,
    )
    session.add(emily_ws)
    session.flush()
    session.add(  # what opening her workspace from the Homework 1 link records
        WorkspaceFolder(
            workspace_id=emily_ws.id, link_key=item.resource_link_id, title=item.label, folder="homework/homework-1"
        )
    )
    session.add(
        SpendDaily(
            course_id=course_id,
            person_id=emily_id,
            day=date.today(),
            compute=Decimal("1.25"),
            storage=Decimal("0.10"),
            running_seconds=Decimal(3 * 3600),
        )
    )
    session.commit()
    assert post_usage_nightly() == 1
    assert passback_course(course_id)["posted"] == 1  # only Emily opened an assignment's workspace
    scores = demo_db(session, DemoScore, user_id=USERS["emily.chen"])
    assert [(s.score_given, s.comment) for s in sorted(scores, key=lambda s: s.timestamp)] == [
        (9.5, "Nice fit"),
        (9.5, "Nice fit\nWorkspace usage: 3.0 h, $1.35"),  # the grade unchanged, the usage line added
    ]
    assert session.scalar(select(DemoLineItem).where(DemoLineItem.label == "Workspace usage")) is None

    # as a separate column instead: the nightly job posts hours, spend and sessions for every student
    assert martinez.post("/sync/usage", token, usage_passback="on", usage_mode="column").status_code == 303
    assert post_usage_nightly() == 1
    assert passback_course(course_id)["posted"] == 50
    usage_item = session.scalar(select(DemoLineItem).where(DemoLineItem.label == "Workspace usage"))
    usage = session.scalar(
        select(DemoScore).where(DemoScore.line_item_id == usage_item.id, DemoScore.user_id == USERS["emily.chen"])
    )
    assert usage.score_given == 3.0 and "3.0 hours" in usage.comment and "$1.35 spent" in usage.comment
    assert "Workspace usage" in martinez.http.get(live.demo + "/gradebook").text

    # Sophie is dropped in the LMS: after the sync she has no access and her running workspace is stopping
    sophie_id = session.scalar(select(Person.id).where(Person.email == "sophie.martinez@university.edu"))
    sophie = Browser(live, "sophie.martinez")
    sophie_token = sophie.launch(link=nav)
    ws = Workspace(
        course_id=course_id,
        person_id=sophie_id,
        link_key="hw3",
        template_id="ml-cpu-student",
        instance_type="t3.medium",
        volume_gb=30,
        region="us-east-1",
        state=WorkspaceState.RUNNING,
        instance_id="i-0abcdef1234567890",
    )
    session.add(ws)
    session.commit()
    roster_page = martinez.http.get(live.demo + "/roster").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', roster_page)[1]
    member = session.scalar(select(DemoMember.id).where(DemoMember.user_id == USERS["sophie.martinez"]))
    dropped = martinez.http.post(
        f"{live.demo}/roster/{member}/status", data={"csrf": csrf, "status": "Inactive"}, allow_redirects=False
    )
    assert dropped.status_code == 303
    assert martinez.post("/sync/roster/now", token).status_code == 303
    assert sync_course_roster(course_id, 1)["dropped"] == 1
    session.refresh(ws)
    assert ws.state is WorkspaceState.STOPPING
    assert f"stop_workspace-{ws.id}" in get_queue(redis, ENFORCEMENT_QUEUE).get_job_ids()  # stops: their own queue
    assert sophie.tool("/app/home", sophie_token).status_code == 403
