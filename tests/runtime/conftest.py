"""Local runtime fixtures: the runtime on a thread over the test's PostgreSQL and moto, real bwrap sandboxes,
real SSH clients. Workspaces are real rows whose instances are real moto instances with rendered user data."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from classroom.db import make_session_factory
from classroom.models import Course, Person, Workspace
from provisioning.aws import AwsBackend
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.host import RuntimeThread
from provisioning.runtime.service import LocalRuntime
from provisioning.ssh_keys import add_key, generate_key_pair
from tests.support.budget import make_running
from tests.support.factories import make_course, make_person
from tests.support.outage import launch_instance


class Clock:
    """The runtime's clock: real time plus a shift the test controls."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class LocalWorkspace:
    """A student's running workspace in the local runtime, and the student's private key."""

    workspace: Workspace
    person: Person
    private_key: str

    @property
    def login(self) -> str:
        return f"ws{self.workspace.id}"

    @property
    def key(self) -> asyncssh.SSHKey:
        return asyncssh.import_private_key(self.private_key)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """The tool's data folder, outside pytest's 0700 tmp folder (the sandbox's `nobody` must reach its home)."""
    top = Path(tempfile.mkdtemp(prefix="cwc-runtime-", dir="/tmp"))
    top.chmod(0o711)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def runtime_root(data_dir: Path) -> Path:
    """The runtime's folder, <data_dir>/runtime as in `make run` (the app finds the homes there)."""
    root = data_dir / "runtime"
    root.mkdir(mode=0o711)
    root.chmod(0o711)
    return root


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(engine: Engine, backend: AwsBackend, runtime_root: Path, clock: Clock) -> Iterator[RuntimeThread]:
    rt = LocalRuntime(FactsLoader(make_session_factory(engine), backend), runtime_root, clock=clock)
    thread = RuntimeThread(rt, asyncssh.generate_private_key("ssh-ed25519"))
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def course(session: Session) -> Course:
    c = make_course(session)
    session.commit()
    return c


@pytest.fixture
def make_workspace(session: Session, backend: AwsBackend, course: Course):  # type: ignore[no-untyped-def]
    """Create a student with a generated key and a running workspace (a real moto instance)."""

    def make(name: str = "Emily Chen", link: str = "hw1") -> LocalWorkspace:
        person = make_person(session, course, name=name)
        private, public = generate_key_pair(name)
        add_key(session, person_id=person.id, course_id=course.id, public_key=public, source="generated")
        ws = make_running(session, course.id, person.id, datetime.now(UTC), link=link)
        session.flush()
        ws.instance_id = launch_instance(backend, ws.id, f"tok-{ws.id}", grace_s=3600)
        session.commit()
        return LocalWorkspace(ws, person, private)

    return make


async def _run(port: int, login: str, client_keys: list[object], command: str) -> tuple[int | None, str, str]:
    async with asyncssh.connect(
        "127.0.0.1", port, username=login, client_keys=client_keys, known_hosts=None, agent_path=None,
        config=None, connect_timeout=20,
    ) as conn:  # fmt: skip
        res = await conn.run(command, check=False, timeout=30)
        return res.exit_status, str(res.stdout), str(res.stderr)


def ssh_run(port: int, login: str, client_keys: list[object], command: str) -> tuple[int | None, str, str]:
    """Log in with asyncssh's client and run one command: (exit status, stdout, stderr)."""
    import asyncio

    return asyncio.run(_run(port, login, client_keys, command))


def ssh_refused(port: int, login: str, client_keys: list[object]) -> bool:
    """True when the login is refused (permission denied), False when it gets in."""
    try:
        ssh_run(port, login, client_keys, "true")
    except asyncssh.PermissionDenied:
        return True
    return False


async def until_quiet(proc, quiet: float = 0.6, limit: float = 20) -> str:  # type: ignore[no-untyped-def]
    """What an interactive session's terminal shows until it stays quiet for `quiet` seconds (or ends)."""
    import asyncio

    out, end = "", asyncio.get_running_loop().time() + limit
    while asyncio.get_running_loop().time() < end:
        try:
            chunk = await asyncio.wait_for(proc.stdout.read(4096), quiet)
        except TimeoutError:
            return out
        if not chunk:
            return out
        out += chunk
    return out
