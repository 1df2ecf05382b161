"""Integrity fixtures: the app on simulated AWS, the course's people from real launches, and hw5's world."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncssh
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.db import make_session_factory
from classroom.models import Course, CoursePolicy, Enrollment, IntegritySettings, Person, Workspace, WorkspaceFolder
from classroom.roles import StaffLevel
from provisioning.agent_service import token_hash
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.host import RuntimeThread
from provisioning.runtime.service import LocalRuntime
from provisioning.ssh_keys import add_key, generate_key_pair
from tests.runtime.conftest import Clock, data_dir, runtime_root, until_quiet  # noqa: F401 - data_dir and runtime_root are fixtures
from tests.support.apps import app_on_simulated_aws
from tests.support.budget import ensure_policies, make_running
from tests.support.lti import launch, tool_token
from tests.support.outage import flask_post, launch_instance

ZONE = ZoneInfo("America/Los_Angeles")
DUE = datetime(2024, 10, 20, 23, 59, tzinfo=ZONE)
NAMES = {1: ("Emily Chen", "emily.chen"), 2: ("David Kim", "david.kim"), 3: ("Sophie Martin", "sophie.martin")}


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A time in the course's zone."""
    return datetime(y, mo, d, h, mi, tzinfo=ZONE)


@pytest.fixture
def app(settings, backend):  # type: ignore[no-untyped-def]
    yield from app_on_simulated_aws(settings, backend)


@dataclass
class Class:
    """The course made by real launches: a token per persona, the course, the students."""

    course: Course
    tokens: dict[str, str]
    students: dict[int, Person]
    keys: dict[int, str] = field(default_factory=dict)
    spaces: dict[int, Workspace] = field(default_factory=dict)


@pytest.fixture
def cs229(client, canvas, session: Session) -> Class:  # type: ignore[no-untyped-def]
    """Dr. Martinez (owner), Alex (head TA), Priya (read-only TA), Emily, David and Sophie, all launched."""
    tokens = {
        "instructor": tool_token(launch(client, canvas, canvas.user("instructor"))),
        "head_ta": tool_token(launch(client, canvas, canvas.user("ta", 2))),
        "ta": tool_token(launch(client, canvas, canvas.user("ta", 1))),
    }
    students = {}
    for n, (name, mail) in NAMES.items():
        tokens[mail.split(".")[0]] = tool_token(launch(client, canvas, canvas.user("student", n)))
        person = session.scalar(select(Person).where(Person.sub == f"student-{n}"))
        person.name, person.email = name, f"{mail}@university.edu"
        students[n] = person
    session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-2")).level = StaffLevel.HEAD_TA
    ensure_policies(session)
    course = session.scalar(select(Course))
    course.time_zone = "America/Los_Angeles"
    policy = session.get(CoursePolicy, course.id)
    policy.integrity = {"audit_log": True, "plagiarism_support": True}
    session.add(
        IntegritySettings(
            course_id=course.id,
            campus_ranges=["127.0.0.0/8"],
            record_commands=True,
            snapshot_path="homework/{assignment}",
            similarity_threshold=60,
        )
    )
    session.commit()
    return Class(course, tokens, students)


def add_workspace(session: Session, backend, c: Class, n: int, created: datetime) -> Workspace:  # type: ignore[no-untyped-def]
    """A running workspace with a real (moto) instance, the hw5 folder and the agent's token `tok-<id>`."""
    person = c.students[n]
    private, public = generate_key_pair(person.name)
    add_key(session, person_id=person.id, course_id=c.course.id, public_key=public, source="generated")
    ws = make_running(session, c.course.id, person.id, created.astimezone(UTC), link="hw5")
    ws.link_title = "ml-hw5" if n == 1 else "ml-homework5" if n == 2 else "ml-hw5-sophie"
    ws.instance_id = launch_instance(backend, ws.id, f"tok-{ws.id}", grace_s=10**8)
    ws.agent_token_hash = token_hash(f"tok-{ws.id}")
    session.add(
        WorkspaceFolder(
            workspace_id=ws.id, link_key="hw5", title="Homework 5", folder="homework/hw5", due_at=DUE.astimezone(UTC)
        )
    )
    session.commit()
    c.keys[n], c.spaces[n] = private, ws
    return ws


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(engine, backend, runtime_root: Path, clock: Clock, client) -> Iterator[RuntimeThread]:  # type: ignore[no-untyped-def]  # noqa: F811
    """The local runtime posting its agent traffic into the app under test."""
    rt = LocalRuntime(
        FactsLoader(make_session_factory(engine), backend),
        runtime_root,
        clock=clock,
        post=flask_post(client, lambda: True),
    )
    thread = RuntimeThread(rt, asyncssh.generate_private_key("ssh-ed25519"))
    thread.start()
    yield thread
    thread.stop()


def at(clock: Clock, when: datetime) -> None:
    """Move the runtime's clock to this moment."""
    clock.shift = when - datetime.now(UTC)


def work_session(
    runtime: RuntimeThread,
    clock: Clock,
    c: Class,
    n: int,
    start: datetime,
    minutes: int,
    commands: list[str],
    upload: Path | None = None,
    typed: tuple[str, ...] = (),
) -> list[str]:
    """One real SSH session from `start` for `minutes`: the commands run (and an scp upload) inside it, then the
    `typed` lines in an interactive shell (a terminal), as a student types them."""
    key = asyncssh.import_private_key(c.keys[n])
    outputs: list[str] = []

    async def go() -> None:
        at(clock, start)
        async with asyncssh.connect(
            "127.0.0.1",
            runtime.rt.port,
            username=f"ws{c.spaces[n].id}",
            client_keys=[key],
            known_hosts=None,
            agent_path=None,
            config=None,
        ) as conn:
            if upload is not None:
                await asyncssh.scp(str(upload), (conn, upload.name))
            for command in commands:
                res = await conn.run(command, check=False, timeout=60)
                assert res.exit_status == 0, res.stderr
                outputs.append(str(res.stdout))
            if typed:
                proc = await conn.create_process(term_type="xterm", term_size=(120, 40))
                for line in (*typed, "exit"):
                    proc.stdin.write(line + "\n")
                    outputs.append(await until_quiet(proc))
                await asyncio.wait_for(proc.wait(), 30)
            at(clock, start + timedelta(minutes=minutes))
        await asyncio.sleep(0.3)

    asyncio.run(go())
    deadline = time.time() + 20  # the server notes the logout, then forgets the connection
    while runtime.rt.servers.get(c.spaces[n].instance_id) and time.time() < deadline:
        time.sleep(0.05)
    collect(runtime)
    return outputs


def collect(runtime: RuntimeThread) -> None:
    """The runtime's minute: scan, send the spool, take wanted snapshots."""
    runtime.sync()
    runtime.call(runtime.rt.collect_all())


def agent_events(client, ws: Workspace, events: list[dict[str, Any]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Events sent as the agent sends them (kinds the runtime does not produce yet)."""
    resp = client.post(
        "/api/agent/activity",
        json={"workspace_id": ws.id, "events": events},
        headers={"Authorization": f"Bearer tok-{ws.id}"},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()  # type: ignore[no-any-return]
