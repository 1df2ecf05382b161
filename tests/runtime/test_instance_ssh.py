"""The tool reaches an "EC2" workspace over SSH: a real sshd on loopback configured by the workspace's user data,
the instance's host key pinned from the agent's report, a course-CA certificate forcing read-only SFTP. Listing,
reading, zip and tar.gz work; a wrong host key is refused before anything is read; no pin is a clear refusal."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.models import Workspace
from classroom.workspaces.host_keys import parse_host_keys
from config.settings import Settings
from provisioning import instance_ssh
from provisioning.home_access import home_reader, readable
from provisioning.host_key_pins import apply_host_key_report
from provisioning.instance_ssh import SshFailure, WorkspaceSshError, connect, ec2_endpoint
from provisioning.remote_home import RemoteHome
from provisioning.runtime.home_files import PathRefused
from provisioning.ssh_ca import TOOL_RESTORE_COMMAND, ensure_course_ca, issue_tool_certificate
from tests.support.budget import make_running
from tests.support.ec2_sshd import USER, Sshd, ensure_user, free_port, start_sshd, write_as
from tests.support.factories import make_course, make_person

# The OS accounts, homes and spool these tests share (tests/support/ec2_sshd.py, cwc-view): one worker at a time.
pytestmark = pytest.mark.xdist_group("ec2-accounts")

TRAIN = b"import torch\nbatch_size = 4096\n"
FILES = {"homework/hw1/train.py": TRAIN, "homework/hw1/data.bin": bytes(range(256)) * 400, ".trainrc": b"lr: 0.1\n",
         "notes/a.ipynb": b'{"cells": []}'}  # fmt: skip


@dataclass
class Ec2:
    ws: Workspace
    sshd: Sshd
    settings: Settings
    home: Path


@pytest.fixture
def ec2(session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ec2]:
    course = make_course(session)
    person = make_person(session, course, name="Sophie Martin")
    ws = make_running(session, course.id, person.id, utcnow(), link="hw1")
    ws.public_ip = "127.0.0.1"
    ca = ensure_course_ca(session, course.id, settings=settings)
    session.commit()
    home = ensure_user()
    write_as(USER, home, FILES)
    (home / "etc-link").symlink_to("/etc")
    os.mkfifo(home / "homework/pipe")  # reading it would block: never opened
    monkeypatch.setattr(instance_ssh, "login_user", lambda _ws: USER)  # the template's login user is `ubuntu`
    folder = Path(tempfile.mkdtemp(prefix="cwc-ec2-sshd-", dir="/tmp"))
    folder.chmod(0o755)
    sshd = start_sshd(folder, port=free_port(), workspace_id=ws.id, ca_public_key=ca.public_key)
    try:
        yield Ec2(ws, sshd, settings.with_(workspace_ssh_port=sshd.port), home)
    finally:
        sshd.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _pin(session: Session, ws: Workspace, key: str) -> None:
    apply_host_key_report(session, ws, parse_host_keys([key]), utcnow())
    session.commit()


def _reader(session: Session, c: Ec2) -> RemoteHome:
    reader = home_reader(session, c.ws, c.settings, why="test", person_id=7)
    assert isinstance(reader, RemoteHome)
    return reader


def test_the_tool_lists_reads_zips_and_backs_up_the_home_with_the_pinned_host_key(session, ec2):
    _pin(session, ec2.ws, ec2.sshd.host_key + " root@ip-10-0-0-7")
    assert readable(ec2.ws, ec2.settings) == (True, "")
    reader = _reader(session, ec2)
    top = {e.name: e.kind for e in reader.browse("")}
    assert top["homework"] == "dir" and top[".trainrc"] == "file" and top["etc-link"] == "link"
    assert {e.path for e in reader.browse("homework/hw1")} == {"homework/hw1/train.py", "homework/hw1/data.bin"}
    assert reader.browse("homework/hw1/train.py") == TRAIN
    assert {e.name: e.kind for e in reader.browse("homework")}["pipe"] == "other"
    for bad in ("etc-link/passwd", "../../etc/passwd", "/etc/passwd", "homework/pipe"):
        with pytest.raises(PathRefused):
            reader.browse(bad)
    with pytest.raises(FileNotFoundError):
        reader.browse("homework/nothing.py")
    body, count = reader.zip_folder("homework")
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert count == 2 and {n: zf.read(n) for n in zf.namelist()} == {
            k: v for k, v in FILES.items() if k.startswith("homework/")}  # fmt: skip
    backup, files = reader.tar_gz_home()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(backup))) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert files == len(FILES) and got == FILES  # the link is not followed into /etc, the FIFO is left out
    assert reader.tar_gz_home()[0] == backup, "deterministic"
    assert any(f"ID tool:test:7 ws{ec2.ws.id}" in line for line in ec2.sshd.logins())


def test_a_wrong_host_key_is_refused_and_nothing_is_read(session, ec2):
    _pin(session, ec2.ws, asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())
    reader = _reader(session, ec2)
    with pytest.raises(WorkspaceSshError) as refused:
        reader.browse("homework/hw1/train.py")
    assert refused.value.failure is SshFailure.HOST_KEY_MISMATCH and "refused" in str(refused.value)
    with pytest.raises(WorkspaceSshError):
        reader.tar_gz_home()
    assert ec2.sshd.logins() == [], "no login: the client stopped at the host key"


def test_no_pin_and_a_changed_key_are_clear_refusals_before_any_connection(session, ec2):
    with pytest.raises(WorkspaceSshError) as none:
        home_reader(session, ec2.ws, ec2.settings, why="test", person_id=7)
    assert none.value.failure is SshFailure.NOT_PINNED and "no pinned SSH host key" in str(none.value)
    assert readable(ec2.ws, ec2.settings)[0] is False
    _pin(session, ec2.ws, ec2.sshd.host_key)
    _pin(session, ec2.ws, asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())  # refused
    with pytest.raises(WorkspaceSshError) as changed:
        home_reader(session, ec2.ws, ec2.settings, why="test", person_id=7)
    assert changed.value.failure is SshFailure.KEY_CHANGED
    assert ec2.sshd.logins() == []


def test_the_tools_certificate_reads_only_and_a_closed_port_is_unreachable(session, ec2):
    _pin(session, ec2.ws, ec2.sshd.host_key)
    key = asyncssh.generate_private_key("ssh-ed25519")
    cert = issue_tool_certificate(session, settings=ec2.settings, workspace=ec2.ws, why="test", person_id=7,
                                  public_key=key.export_public_key().decode())  # fmt: skip
    endpoint = ec2_endpoint(ec2.ws, port=ec2.sshd.port)

    async def try_writes() -> tuple[str, int | None]:
        async with await connect(endpoint, key, cert) as conn:
            async with conn.start_sftp_client() as sftp:
                with pytest.raises(asyncssh.SFTPError):
                    async with sftp.open("planted.txt", "wb") as fh:
                        await fh.write(b"x")
                with pytest.raises(asyncssh.SFTPError):
                    await sftp.remove("homework/hw1/train.py")
            result = await conn.run("touch planted-by-shell", check=False)
            return str(result.stdout) + str(result.stderr), result.exit_status

    output, status = asyncio.run(try_writes())
    assert status != 0 and not (ec2.home / "planted-by-shell").exists() and not (ec2.home / "planted.txt").exists()
    assert (ec2.home / "homework/hw1/train.py").read_bytes() == TRAIN
    closed = ec2_endpoint(ec2.ws, port=free_port())
    with pytest.raises(WorkspaceSshError) as unreachable:
        asyncio.run(connect(closed, key, cert))
    assert unreachable.value.failure is SshFailure.UNREACHABLE


def test_the_tool_asks_openssh_for_aes_gcm_first_and_gets_it(session, ec2):
    """AES-GCM costs a keystroke's packet ~2 us against ~13 us for asyncssh's ChaCha20-Poly1305 (bench.terminal)."""
    _pin(session, ec2.ws, ec2.sshd.host_key)
    key = asyncssh.generate_private_key("ssh-ed25519")
    cert = issue_tool_certificate(session, settings=ec2.settings, workspace=ec2.ws, why="test", person_id=7,
                                  public_key=key.export_public_key().decode())  # fmt: skip

    async def ciphers() -> tuple[str, str]:
        async with await connect(ec2_endpoint(ec2.ws, port=ec2.sshd.port), key, cert) as conn:
            return conn.get_extra_info("send_cipher"), conn.get_extra_info("recv_cipher")

    assert asyncio.run(ciphers()) == ("aes256-gcm@openssh.com", "aes256-gcm@openssh.com")
    assert set(instance_ssh.CIPHERS) == {a.decode() for a in asyncssh.encryption.get_default_encryption_algs()}


def test_a_restore_certificate_creates_files_but_never_removes_renames_or_links(session, ec2):
    _pin(session, ec2.ws, ec2.sshd.host_key)
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode()
    cert = issue_tool_certificate(session, settings=ec2.settings, workspace=ec2.ws, why="restore-B1", person_id=7,
                                  public_key=public, command=TOOL_RESTORE_COMMAND)  # fmt: skip
    endpoint = ec2_endpoint(ec2.ws, port=ec2.sshd.port)

    async def scene() -> None:
        async with await connect(endpoint, key, cert) as conn, conn.start_sftp_client() as sftp:
            await sftp.mkdir("restored")
            async with sftp.open("restored/new.txt", "xb") as fh:
                await fh.write(b"new\n")
            for attempt in (sftp.remove("homework/hw1/train.py"), sftp.rename(".trainrc", "restored/x"),
                            sftp.symlink("/etc/shadow", "restored/s"), sftp.rmdir("notes")):  # fmt: skip
                with pytest.raises(asyncssh.SFTPError):
                    await attempt

    asyncio.run(scene())
    assert (ec2.home / "restored/new.txt").read_bytes() == b"new\n"
    assert (ec2.home / "homework/hw1/train.py").read_bytes() == TRAIN and (ec2.home / ".trainrc").exists()
    assert not (ec2.home / "restored/s").is_symlink()
