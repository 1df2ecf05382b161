"""A staff debug session (TA tools) in the browser terminal: the session's own certificate through the gateway, so
the runtime applies its mode (view-only home) and records it exactly as over SSH; after "End session" it is gone."""

# ruff: noqa: F811 - the fixture `gateway` is imported from its module
from __future__ import annotations

import asyncio
import time

import aiohttp
from sqlalchemy import select

from classroom.models import DebugRecording, StaffLevel
from classroom.services.debug_sessions import end_session, open_session, parse_request
from classroom.services.terminal import (
    Mode,
    Ticket,
    debug_credentials,
    forget_debug_credentials,
    issue_ticket,
    keep_debug_credentials,
)
from provisioning.runtime.recording import parse_cast
from provisioning.ssh_keys import generate_key_pair
from tests.runtime.test_debug_sessions import _sophie_with_train_py
from tests.runtime.test_terminal_gateway import _open, gateway  # noqa: F401 - `gateway` is a fixture
from tests.support.factories import make_person


def _debug_ticket(redis, ds, alex) -> str:  # type: ignore[no-untyped-def]
    creds = debug_credentials(redis, ds.id)
    assert creds is not None
    return issue_ticket(redis, Ticket(person_id=alex.id, person_name=alex.name, course_id=ds.course_id,
                                      workspace_id=ds.workspace_id, owner_person_id=alex.id, mode=Mode.DEBUG,
                                      staff=True, debug_session_id=ds.id, private_key=creds[0],
                                      certificate=creds[1]))  # fmt: skip


def test_a_view_only_debug_session_in_the_browser_reads_cannot_write_and_is_recorded(
    gateway, session, settings, course, backend, runtime, make_workspace, redis
):  # type: ignore[no-untyped-def]
    sophie = _sophie_with_train_py(make_workspace, runtime)
    alex = make_person(session, course, name="Alex Thompson", level=StaffLevel.HEAD_TA)
    private, public = generate_key_pair("browser")
    req = parse_request("Sophie's training crashes", "view", "", "30")
    cert, ds = open_session(session, settings=settings, ws=sophie.workspace, staff=alex, public_key=public, req=req)
    session.commit()
    keep_debug_credentials(redis, ds.id, private, cert, 1800)

    async def scene() -> str:
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, _debug_ticket(redis, ds, alex))
            assert await term.read_until(f"Debug session D{ds.id}")
            await term.type("cat homework/hw1/train.py\n")
            assert await term.read_until("batch_size = 4096")
            await term.type("echo x >> homework/hw1/train.py\n")
            assert await term.read_until("Read-only file system")
            await term.type("exit\n")
            await term.control("closed", timeout=20)
            return term.screen

    asyncio.run(scene())
    assert (runtime.rt.home(sophie.workspace.instance_id) / "homework/hw1/train.py").read_text().count("x\n") == 0
    deadline, casts = time.monotonic() + 20, []
    while not casts and time.monotonic() < deadline:  # the runtime uploads the cast when the channel closes
        session.expire_all()
        rows = session.scalars(select(DebugRecording).where(DebugRecording.debug_session_id == ds.id)).all()
        casts = [parse_cast(backend.get_private_object(r.s3_key)) for r in rows]
        time.sleep(0.5)
    assert casts and "cat homework/hw1/train.py" in casts[0].typed() and "batch_size = 4096" in casts[0].shown()

    ticket = _debug_ticket(redis, ds, alex)  # made before the end, used after it: the runtime refuses the cert
    end_session(session, ds, actor_person_id=alex.id, why="done")
    session.commit()
    forget_debug_credentials(redis, ds.id)

    async def after_end() -> dict:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket)
            return await term.control("error", timeout=20)

    assert "did not accept" in asyncio.run(after_end())["message"]
    assert debug_credentials(redis, ds.id) is None
