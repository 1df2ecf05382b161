"""The browser terminal on an "EC2" workspace: the gateway logs in to a real sshd configured by the workspace's
user data (loopback), as the template's login user with a course-CA certificate for the connection, accepting only
the host key the agent reported first. A wrong host key or none pinned: a clear refusal, no login."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncssh
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import Person, StaffSshCert, Workspace
from classroom.workspaces.host_keys import parse_host_keys
from provisioning import instance_ssh
from provisioning.gateway.host import GatewayThread, build_gateway
from provisioning.host_key_pins import apply_host_key_report
from provisioning.ssh_ca import ensure_course_ca
from tests.runtime.test_terminal_gateway import ORIGIN, _open, ticket_for
from tests.support.budget import make_running
from tests.support.ec2_sshd import USER, Sshd, ensure_user, free_port, start_sshd
from tests.support.factories import make_course, make_person

# The OS accounts, homes and spool these tests share (tests/support/ec2_sshd.py, cwc-view): one worker at a time.
pytestmark = pytest.mark.xdist_group("ec2-accounts")


@dataclass
class Emily:
    """What ticket_for needs: the workspace and its owner (name as the ticket carries it)."""

    workspace: Workspace
    person: Person
    sshd: Sshd


@pytest.fixture
def emily(session: Session, settings, monkeypatch) -> Iterator[Emily]:  # type: ignore[no-untyped-def]
    course = make_course(session)
    person = make_person(session, course, name="Emily Chen")
    ws = make_running(session, course.id, person.id, utcnow(), link="hw1")
    ws.public_ip = "127.0.0.1"
    ca = ensure_course_ca(session, course.id, settings=settings)
    session.commit()
    ensure_user()
    monkeypatch.setattr(instance_ssh, "login_user", lambda _ws: USER)  # the templates' login user is `ubuntu`
    folder = Path(tempfile.mkdtemp(prefix="cwc-ec2-sshd-", dir="/tmp"))
    folder.chmod(0o755)
    sshd = start_sshd(folder, port=free_port(), workspace_id=ws.id, ca_public_key=ca.public_key)
    try:
        yield Emily(ws, person, sshd)
    finally:
        sshd.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def gateway(settings, emily) -> Iterator[GatewayThread]:  # type: ignore[no-untyped-def]
    cfg = settings.with_(workspace_ssh_port=emily.sshd.port)  # no local runtime: workspaces are EC2 instances
    thread = GatewayThread(build_gateway(cfg, origins={ORIGIN}))
    thread.port = thread.start()  # type: ignore[attr-defined]
    yield thread
    thread.stop()


def _pin(session: Session, ws: Workspace, key: str) -> None:
    apply_host_key_report(session, ws, parse_host_keys([key]), utcnow())
    session.commit()


def test_the_owner_gets_a_shell_on_the_ec2_instance_with_its_pinned_host_key(gateway, emily, redis, session):  # type: ignore[no-untyped-def]
    _pin(session, emily.workspace, emily.sshd.host_key)

    async def scene() -> bool:
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            await term.type("echo $((6*7)) $(whoami)\n")
            return await term.read_until(rf"[\r\n]42 {USER}\r?\n")

    assert asyncio.run(scene())
    cert = session.scalar(select(StaffSshCert).where(StaffSshCert.workspace_id == emily.workspace.id))
    assert cert.key_id.startswith(f"terminal:{emily.person.id}:")  # a certificate for this connection
    assert any(f"ID {cert.key_id}" in line for line in emily.sshd.logins())


@pytest.mark.parametrize("pin", ["wrong", "none"])
def test_a_wrong_or_missing_pin_is_refused_before_any_login(gateway, emily, redis, session, pin):  # type: ignore[no-untyped-def]
    if pin == "wrong":
        _pin(session, emily.workspace, asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())

    async def scene() -> dict:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http:
            term = await _open(http, gateway.port, ticket_for(redis, emily))
            return await term.control("error", timeout=20)

    message = asyncio.run(scene())["message"]
    want = "did not show the SSH host key pinned" if pin == "wrong" else "no pinned SSH host key"
    assert want in message, message
    assert emily.sshd.logins() == []
    if pin == "none":  # refused before a certificate was made
        assert session.scalar(select(StaffSshCert).where(StaffSshCert.workspace_id == emily.workspace.id)) is None
