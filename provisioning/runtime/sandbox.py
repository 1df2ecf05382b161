"""Bubblewrap sandboxes: one per workspace, its home read-write, materials and tools read-only, no network.

The argv is built by a pure function; the shell around it (homes, a private /etc, the bwrap check) is small.
Sandboxed processes run as the unprivileged host user `nobody` (uid 65534; or, when the runtime itself is not
root, as the user running it) and, inside, as uid 1000 in their own user, pid, ipc, uts and network
namespaces: they see their home, the course materials, /usr, and nothing of the host's /etc, of the tool's
data folder or of any other workspace.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import termios
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioning.agent.cwc_commands import HOOK_NAME, local_etc
from provisioning.agent.cwc_toolwrap import TOOLS

HOST_UID = 65534  # nobody: what a sandboxed process is on the host
INNER_UID = 1000  # what it is inside (the workspace's os user)
TOOLS_RO = ("/usr",)  # python3, git, bash, coreutils, scp and sftp-server live here (Debian's merged /usr)
USR_LINKS = (("usr/bin", "/bin"), ("usr/sbin", "/sbin"), ("usr/lib", "/lib"), ("usr/lib64", "/lib64"))
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
AGENT_DIR = "/opt/cwc"  # on EC2: /usr/local/lib/cwc-agent
TOOL_LOG_DIR = "/var/log/cwc"
TMUX_SOCKET_DIR = f"/tmp/tmux-{INNER_UID}"
TMUX_CONF = "set -ga update-environment CWC_SESSION\n"  # a new tmux session's shell names its login's session


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here: the runtime refuses to start rather than run workspaces unconfined."""


@dataclass(frozen=True)
class SandboxSpec:
    """Where one workspace's sandbox gets its files from."""

    os_user: str
    home: Path  # host path, bound read-write at /home/<os_user>
    materials: Path  # host path, bound read-only at mount_point
    mount_point: str  # the EC2 mount point (/mnt/<course>-materials)
    etc: Path  # a private /etc (passwd, group, hostname, motd) bound read-only
    hostname: str
    agent: Path | None = None  # the agent's code, read-only at /opt/cwc (the same files EC2 installs)
    toolbin: Path | None = None  # the curl/wget/unzip/tar/scp recorders, read-only at /usr/local/bin
    tool_log: Path | None = None  # a folder bound read-write at /var/log/cwc (the recorders' log)
    tmux_dir: Path | None = None  # tmux's socket folder, shared by every session (the runtime keeps its server)

    @property
    def inner_home(self) -> str:
        return f"/home/{self.os_user}"


def bwrap_argv(
    spec: SandboxSpec,
    command: list[str],
    env: dict[str, str],
    *,
    new_session: bool = True,
    extra_ro: tuple[tuple[str, str], ...] = (),
    home_read_only: bool = False,
    student_tmux: bool = False,
) -> list[str]:
    """The bwrap command line that runs `command` inside the workspace's sandbox. Pure.

    new_session (setsid) keeps a sandboxed process from pushing input into the runtime's terminal; a session with
    its own pseudo-terminal (which the runtime made the controlling terminal) needs none. home_read_only binds the
    home read-only (a view-only debug session). student_tmux binds the student's tmux socket folder: only the
    student's own sessions and the tmux server get it. A client of that socket drives the server's read-write
    shells as the student, so a debug session (its own recorded shell) or a scan never sees it.
    """
    argv = ["bwrap", "--unshare-all", "--uid", str(INNER_UID), "--gid", str(INNER_UID), "--hostname", spec.hostname,
            "--die-with-parent", *(["--new-session"] if new_session else []), "--clearenv"]  # fmt: skip
    for path in TOOLS_RO:
        argv += ["--ro-bind", path, path]
    for target, link in USR_LINKS:
        if os.path.lexists("/" + target):
            argv += ["--symlink", target, link]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", str(spec.etc), "/etc"]
    if student_tmux and spec.tmux_dir is not None:  # tmux's default socket folder: its shells outlive the session
        argv += ["--bind", str(spec.tmux_dir), TMUX_SOCKET_DIR]
    argv += ["--ro-bind" if home_read_only else "--bind", str(spec.home), spec.inner_home]
    argv += ["--ro-bind", str(spec.materials), spec.mount_point]
    if spec.agent and spec.toolbin and spec.tool_log:  # as on EC2: the agent's files and its tool recorders
        argv += ["--ro-bind", str(spec.agent), AGENT_DIR, "--ro-bind", str(spec.toolbin), "/usr/local/bin",
                 "--bind", str(spec.tool_log), TOOL_LOG_DIR]  # fmt: skip
    for source, target in extra_ro:  # e.g. the agent's code, for the runtime's scans
        argv += ["--ro-bind", source, target]
    base = {"HOME": spec.inner_home, "USER": spec.os_user, "LOGNAME": spec.os_user, "SHELL": "/bin/bash",
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}  # fmt: skip
    for name, value in {**base, **env}.items():
        argv += ["--setenv", name, value]
    return [*argv, "--chdir", spec.inner_home, "--", *command]


def etc_files(spec: SandboxSpec, banner: str) -> dict[str, str]:
    """The private /etc: the os user, its group, the hostname and the login banner. Pure."""
    uid, user = INNER_UID, spec.os_user
    return {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n{user}:x:{uid}:{uid}::{spec.inner_home}:/bin/bash\n",
        "group": f"root:x:0:\n{spec.os_user}:x:{uid}:\n",
        "hostname": spec.hostname + "\n",
        "motd": banner,
        "tmux.conf": TMUX_CONF,
    }


def prepare(spec: SandboxSpec, banner: str) -> None:
    """Create the home (kept across stops), the materials folder and the private /etc on the host."""
    for path in (spec.home, spec.materials, spec.etc):
        path.mkdir(parents=True, exist_ok=True)
    if spec.tmux_dir is not None:
        spec.tmux_dir.mkdir(parents=True, exist_ok=True)
    for private in (spec.home, spec.tmux_dir):  # tmux refuses a socket folder others may enter
        if private is not None:
            if os.geteuid() == 0:
                os.chown(private, HOST_UID, HOST_UID)
            os.chmod(private, 0o700)
    for name, content in etc_files(spec, banner).items():
        (spec.etc / name).write_text(content)


def write_motd(spec: SandboxSpec, banner: str) -> None:
    """The sandbox's /etc/motd: the login banner, rewritten only when it changes."""
    path = spec.etc / "motd"
    with contextlib.suppress(OSError):
        if path.read_text() == banner:
            return
    path.write_text(banner)


def make_toolbin(folder: Path) -> Path:
    """The sandbox's /usr/local/bin: curl, wget, unzip, tar and scp as links to the agent's recorder. Returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:  # as on EC2; the runtime reports scp sessions itself (server._transfer), the scan skips them
        link = folder / tool
        if not link.is_symlink():
            link.symlink_to(f"{AGENT_DIR}/cwc_toolwrap.py")
    folder.chmod(0o755)
    return folder


def arm_tool_log(folder: Path, collecting: bool) -> None:
    """The recorders' log exists (owned by the sandbox's user) only while the course collects activity."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    log = folder / "tools.jsonl"
    if not collecting:
        log.unlink(missing_ok=True)
    elif not log.exists():
        log.touch(mode=0o600)
        if os.geteuid() == 0:
            os.chown(log, HOST_UID, HOST_UID)


def arm_commands(folder: Path, etc: Path, recording: bool) -> None:
    """Typed commands, only while the course records them: the shell hook in the private /etc's profile and
    bash.bashrc, and its log (owned by the sandbox's user) next to the tool log; off, neither exists."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "commands.jsonl"
    for name, text in local_etc(f"{AGENT_DIR}/{HOOK_NAME}").items():
        if recording:
            (etc / name).write_text(text)
        else:
            (etc / name).unlink(missing_ok=True)
    if not recording:
        log.unlink(missing_ok=True)
    elif not log.exists():
        log.touch(mode=0o600)
        if os.geteuid() == 0:
            os.chown(log, HOST_UID, HOST_UID)


def remove_home(home: Path) -> None:
    """Remove a terminated workspace's home (the sync checked it is saved: archived, waived by staff, or a reset's
    backup)."""
    shutil.rmtree(home, ignore_errors=True)


def as_nobody(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """(argv, subprocess arguments) that run `argv` as `nobody` when the runtime is root, as drop_privileges does.

    util-linux's setpriv drops the ids, so Python spawns with vfork and no code in the child: a spawn then blocks
    the runtime's event loop well under a millisecond instead of ~35 ms (fork of a 150 MB process, then Python
    in the child), which under a 50-login burst delayed every login. Without setpriv, subprocess does it in C.
    """
    if os.geteuid() != 0:
        return argv, {}
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={HOST_UID}", f"--regid={HOST_UID}", "--clear-groups", *argv], {}
    return argv, {"user": HOST_UID, "group": HOST_UID, "extra_groups": []}


def _pty_child() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    drop_privileges()


def pty_spawn(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """A terminal session's argv and spawn arguments: util-linux's `setsid --ctty` makes the pty its controlling
    terminal and setpriv drops to `nobody`, so nothing runs in the forked child (see as_nobody); only without them,
    the same in Python in the child (preexec_fn, which is unsafe in a threaded process)."""
    setsid = shutil.which("setsid")
    dropped, as_user = as_nobody(argv)
    if setsid and not as_user:
        return [setsid, "--ctty", *dropped], {}
    return argv, {"preexec_fn": _pty_child}


def drop_privileges() -> None:
    """preexec_fn: become `nobody` before exec'ing bwrap (the sandbox then owns nothing of the host)."""
    if os.geteuid() != 0:
        return  # already an unprivileged user
    os.setgroups([])
    os.setgid(HOST_UID)
    os.setuid(HOST_UID)


def check_bwrap() -> None:
    """Run a trivial sandbox as `nobody`; raise SandboxUnavailable saying why when it cannot run."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable("bubblewrap is not installed (Debian: apt-get install bubblewrap)")
    argv = ["bwrap", "--unshare-all", "--uid", str(INNER_UID), "--die-with-parent", "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--proc", "/proc", "--dev", "/dev",
            "--", "/usr/bin/true"]  # fmt: skip
    if os.path.lexists("/lib64"):
        argv[-2:-2] = ["--symlink", "usr/lib64", "/lib64"]
    try:
        argv, as_user = as_nobody(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, **as_user)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap did not run: {exc}") from exc
    if done.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox here: {done.stderr.strip()[:300]}")
