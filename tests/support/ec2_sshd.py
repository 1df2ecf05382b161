"""A real OpenSSH sshd on loopback, configured by a workspace's rendered user data (its sshd drop-in, CA file and
principals file under a test folder), logging in a dedicated OS user: what an EC2 workspace's sshd does.

Two of them stand in for two machines of one workspace (a reset's old and new instance): each its own loopback
address (127.0.0.1, 127.0.0.2: the same port, as EC2's SSH port is the same on every instance), its own host key
and its own OS user and home (USER, NEW_USER), since the workspace's login name is the same on both."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dev import services
from provisioning.userdata import UserDataInput, render_user_data
from tests.runtime.test_user_data_sshd import _heredoc
from tests.support.os_users import accounts_lock

USER = "cwc-h17a-student"  # made once with useradd, idempotently (the tests run as root)
NEW_USER = "cwc-h17c-new"  # the second machine's login user (a reset's new instance)
NEW_HOST = "127.0.0.2"  # the second machine's address (Linux routes all of 127/8 to loopback)


def free_port() -> int:
    """Any free port on 127.0.0.1."""
    return services.free_port(0)


def ensure_user(name: str = USER) -> Path:
    """The OS user (bash, a home, not locked: sshd without PAM refuses locked accounts); its emptied home."""
    with accounts_lock():
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=False, capture_output=True)
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    home.mkdir(mode=0o750, exist_ok=True)
    for child in home.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return home


def write_as(user: str, home: Path, files: dict[str, bytes]) -> None:
    """Write files into the home, owned by the user, as the student would have."""
    entry = pwd.getpwnam(user)
    for rel, data in files.items():
        path = home / rel
        for folder in reversed([p for p in path.relative_to(home).parents if str(p) != "."]):
            (home / folder).mkdir(exist_ok=True)
            os.chown(home / folder, entry.pw_uid, entry.pw_gid)
        path.write_bytes(data)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class Sshd:
    """The running sshd: its port, its host public key line, its log."""

    process: subprocess.Popen[bytes]
    port: int
    host_key: str
    log: Path
    user: str = USER

    def logins(self) -> list[str]:
        """sshd's 'Accepted ...' lines so far (a refused host key never gets this far)."""
        return [line for line in self.log.read_text().splitlines() if "Accepted" in line]

    def stop(self) -> None:
        """Stop sshd and, as the machine's power-off would, the login user's tmux server (the terminal's shell)."""
        self.process.terminate()
        self.process.wait(10)
        subprocess.run(["runuser", "-u", self.user, "--", "tmux", "kill-server"], capture_output=True, timeout=10)  # noqa: S603,S607


def start_sshd(
    folder: Path,
    *,
    port: int,
    workspace_id: int,
    ca_public_key: str,
    user: str = USER,
    host: str = "127.0.0.1",
    prefix: tuple[str, ...] = (),
) -> Sshd:
    """Render the workspace's user data, install its sshd pieces under `folder`, and start sshd on `host:port`
    with a host key of its own (`prefix`: a command sshd runs under, e.g. a namespace with the recorders)."""
    user_data = render_user_data(UserDataInput(
        workspace_id=workspace_id, agent_url="https://tool/api/agent/heartbeat", agent_token="t", os_user=user,
        ssh_public_keys=(), course_slug="cs229", region="us-east-1", file_system_id="fs-1",
        access_point_id="fsap-1", ca_public_key=ca_public_key))  # fmt: skip
    (folder / "cwc_user_ca.pub").write_text(_heredoc(user_data, "CWC_CA"))
    (folder / "cwc_banner").write_text(_heredoc(user_data, "CWC_BANNER"))
    (folder / "cwc_principals").mkdir(exist_ok=True)
    assert f"echo 'ws{workspace_id}' > /etc/ssh/cwc_principals/{user}" in user_data
    (folder / "cwc_principals" / user).write_text(f"ws{workspace_id}\n")
    (folder / "60-cwc.conf").write_text(_heredoc(user_data, "CWC_SSHD").replace("/etc/ssh/", f"{folder}/"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(folder / "cwc_revoked.krl")], check=True)  # as the user data
    (folder / "sshd_config").write_text(  # Ubuntu's main config defines the sftp subsystem; the drop-in the rest
        f"StrictModes no\nInclude {folder}/60-cwc.conf\nListenAddress {host}\nPort {port}\n"
        f"HostKey {folder}/host\nUsePAM no\nPidFile none\nSubsystem sftp /usr/lib/openssh/sftp-server\n")  # fmt: skip
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    process = spawn_sshd([*prefix, "/usr/sbin/sshd", "-D", "-f", str(folder / "sshd_config"), "-E", str(log)], log=log)
    return Sshd(process, port, (folder / "host.pub").read_text().strip(), log, user)


def spawn_sshd(argv: list[str], *, log: Path | None = None, **popen: object) -> subprocess.Popen[bytes]:
    """Start sshd and return once it listens, as sshd itself says: Debian's and Ubuntu's sshd send systemd's
    READY=1 to $NOTIFY_SOCKET after binding its ports, so nothing polls its log or its port. Fails at once if
    sshd exits first (a bad config), after 20 s if it never gets ready."""
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready:
        ready.bind(f"{tmp}/notify")
        ready.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": f"{tmp}/notify"}
        process = subprocess.Popen(argv, env=env, **popen)  # type: ignore[call-overload]
        for _ in range(100):
            try:
                if b"READY=1" in ready.recv(4096):
                    return process
            except TimeoutError:
                if process.poll() is not None:
                    break
        process.terminate()
        process.wait(10)
        why = log.read_text() if log and log.exists() else f"exit status {process.returncode}"
        raise AssertionError(f"sshd did not report READY=1 (an sshd built without systemd's notify?): {why}")


def wait_for_logouts(log: Path, count: int, *, within_s: float = 20.0) -> None:
    """Wait until sshd's log holds `count` "Disconnected from user" lines: sshd writes the last one after the
    client has gone, so a test that stops sshd at once could lose it. Fails with the log after `within_s`."""
    deadline = time.monotonic() + within_s
    while (text := log.read_text() if log.exists() else "").count("Disconnected from user") < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"sshd logged fewer than {count} logouts in {within_s:.0f} s:\n{text}")
        time.sleep(0.05)
