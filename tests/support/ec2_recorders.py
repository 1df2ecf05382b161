"""The user data's recorders on a stand-in instance: `curl`, `wget`, `unzip`, `tar` and `scp` in /usr/local/bin
linked to the agent's cwc_toolwrap.py, and the folder /var/log/cwc, made by the user data's own lines (cut from
rendered user data, not copied) inside a private mount namespace that puts a test folder at /usr/local and another
at /var/log. What runs in such a namespace (a wrapped command as the student, a stand-in sshd) sees the recorders
where an EC2 instance has them; nothing else on this machine does. The agent, outside, reads the test folders."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioning.userdata import AGENT_HOME, agent_bundle

PATH = "/usr/local/bin:/usr/bin:/bin"  # sshd's default PATH (Debian), and Ubuntu's /etc/environment order


def install_lines(user_data: str) -> str:
    """The user data's lines that link the recorders and make their log's folder."""
    start = user_data.index("for tool in ")
    marker = "install -d -m 755 /var/log/cwc\n"
    return user_data[start : user_data.index(marker, start) + len(marker)]


@dataclass(frozen=True)
class Recorders:
    """The test folders standing for /usr/local and /var/log."""

    root: Path

    @property
    def usr_local(self) -> Path:
        return self.root / "usr-local"

    @property
    def log(self) -> Path:
        """/var/log/cwc/tools.jsonl as the agent (outside the namespace) reads it."""
        return self.root / "var-log" / "cwc" / "tools.jsonl"

    def namespace(self) -> list[str]:
        """A command prefix: run the rest in a private mount namespace with the test folders mounted."""
        binds = (f"mount --bind {shlex.quote(str(self.usr_local))} /usr/local && "
                 f"mount --bind {shlex.quote(str(self.root / 'var-log'))} /var/log && exec \"$@\"")  # fmt: skip
        return ["unshare", "--mount", "--propagation", "private", "bash", "-c", binds, "cwc-namespace"]

    def run_as(self, user: str, home: Path, script: str) -> subprocess.CompletedProcess[str]:
        """Run a bash script as the OS user, in its home, with sshd's PATH, inside the namespace."""
        argv = [*self.namespace(), "setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "env", "-i",
                f"HOME={home}", f"PATH={PATH}", "LANG=C.UTF-8", "bash", "-c", f"cd && {script}"]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def install_recorders(root: Path, user_data: str) -> Recorders:
    """Unpack the agent's bundle where the user data does (AGENT_HOME), then run the user data's own recorder
    lines in the namespace. `root` must be traversable by the student (0755)."""
    rec = Recorders(root)
    for folder in (rec.usr_local / "bin", rec.usr_local / AGENT_HOME.removeprefix("/usr/local/"), root / "var-log"):
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    agent = rec.usr_local / AGENT_HOME.removeprefix("/usr/local/")
    subprocess.run(["tar", "-xzf", "-", "--no-same-owner", "-C", str(agent)], input=agent_bundle(), check=True)
    done = subprocess.run([*rec.namespace(), "bash", "-c", "set -euo pipefail\n" + install_lines(user_data)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return rec
