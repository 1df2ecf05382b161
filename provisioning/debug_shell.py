"""The command an EC2 debug session's certificate forces: the agent bundle's recorder, with what its banner says.

sshd runs a certificate's `force-command` critical option instead of whatever the client asks (the request is
left in SSH_ORIGINAL_COMMAND), through the login user's shell; the recorder (provisioning/agent/cwc_debug_shell.py)
prints the banner, runs the shell or the command in a pseudo-terminal, records it in asciicast v2 and leaves the
file to the agent, which uploads it. Pure.
"""

from __future__ import annotations

import shlex
from datetime import datetime

from provisioning import userdata

RECORDER = "cwc_debug_shell.py"


def banner_name(name: str) -> str:
    """A person's name as one printable line for the banner (at most 80 characters). Pure."""
    return " ".join("".join(c if c.isprintable() else " " for c in name).split())[:80] or "the student"


def recorder_command(
    label: str, mode: str, expires_at: datetime, student_name: str, agent_home: str | None = None
) -> str:
    """The forced command for debug session `label` (view | full) until `expires_at`. Pure."""
    if mode not in ("view", "full") or not label.isalnum():
        raise ValueError("a debug session is view or full, labelled D<n>")
    words = [
        "/usr/bin/python3",
        "-s",
        "-E",
        f"{agent_home or userdata.AGENT_HOME}/{RECORDER}",
        label,
        mode,
        str(int(expires_at.timestamp())),
    ]
    return " ".join(shlex.quote(w) for w in words) + " " + shlex.quote(banner_name(student_name))
