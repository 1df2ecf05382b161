"""One login banner: the local runtime's and the EC2 user data's are the same text for each integrity setting, and
list exactly what the student's "What is recorded" page lists (the page's items carry the banner's keys)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from classroom.db import make_session_factory, utcnow
from classroom.integrity.settings import Settings, save
from classroom.jobs.context import JobContext, use_context
from classroom.models import Course, Person
from provisioning.agent.cwc_agent import RECORDED_ACTIVITY, RECORDED_ALWAYS, login_banner, recorded_items
from provisioning.jobs.workspace import launch_spec
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.service import LocalRuntime
from tests.support.budget import make_policy, make_running
from tests.support.lti import launch, tool_token

WORDS = dict(RECORDED_ALWAYS + RECORDED_ACTIVITY)
SETTINGS = [(False, False), (False, True), (True, False), (True, True)]  # (collects activity, records commands)


def _ec2_banner(user_data: str) -> str:
    start = user_data.index("<<'CWC_BANNER'\n") + len("<<'CWC_BANNER'\n")
    return user_data[start : user_data.index("CWC_BANNER\n", start)]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_local_and_ec2_banners_match_the_recorded_page(app, client, canvas, session, backend, engine, redis,
                                                        runtime_root: Path):  # fmt: skip
    token = tool_token(launch(client, canvas, canvas.user("student", 1)))
    course = session.scalar(select(Course))
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    policy = make_policy(session, course)
    ws = make_running(session, course.id, emily.id, utcnow(), link="hw1")
    session.flush()
    ctx = JobContext(app.extensions["cwc"].settings, make_session_factory(engine), redis, backend)
    rt = LocalRuntime(FactsLoader(make_session_factory(engine), backend), runtime_root)
    seen = set()
    for collects, records in SETTINGS:
        policy.integrity = {"plagiarism_support": collects}
        save(session, course.id, Settings(record_commands=records))
        session.commit()
        use_context(ctx)
        try:
            user_data = launch_spec(session, ctx, ws).user_data
        finally:
            use_context(None)
        if ws.instance_id is None:
            ws.instance_id = backend.launch(launch_spec(session, ctx, ws)).instance_id
            session.commit()
        asyncio.run(rt.sync())  # the runtime reads the course's settings in its sync pass
        local, ec2 = rt.banner(ws.instance_id), _ec2_banner(user_data)
        page = client.get("/app/recorded", query_string={"t": token}).get_data(as_text=True)
        listed = re.findall(r'data-recorded="(\w+)"', page)
        assert local == ec2 == login_banner(collects, collects and records)
        assert listed == recorded_items(collects, collects and records)
        assert [k for k in WORDS if _flat(WORDS[k]) in _flat(local)] == [k for k in WORDS if k in listed]
        assert ("Your course collects activity" in _flat(local)) is collects and ("scp" in local) is collects
        seen.add(local)
    assert len(seen) == 3  # not collecting reads the same whatever the command setting; collecting differs


@pytest.mark.parametrize(("collects", "records"), SETTINGS)
def test_the_agent_rewrites_the_banner_when_the_course_changes_its_settings(tmp_path, collects, records):
    from provisioning.agent.cwc_agent import heartbeat, write_banner

    class Keeper:
        def answer(self, answer, now):  # type: ignore[no-untyped-def]
            return "held"

    path = str(tmp_path / "cwc_banner")
    answer = {"banner": "", "collect_activity": collects, "record_commands": collects and records}
    cfg = {"url": "http://tool/api/agent/heartbeat", "token": "t", "home": str(tmp_path), "user": "u",
           "motd": str(tmp_path / "cwc-messages")}  # fmt: skip
    heartbeat(cfg, Keeper(), {}, 0, post=lambda *a: (200, answer), write_keys=lambda *a: None,
              write_login_banner=lambda **flags: write_banner(path, **flags))  # fmt: skip
    assert Path(path).read_text() == login_banner(collects, collects and records)
