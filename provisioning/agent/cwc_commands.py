"""Commands typed in interactive shells, for the agent's `command` events (stdlib only; runs on EC2 and locally).

Only when the course records commands (its integrity setting, told to the agent with each heartbeat and to the
local runtime by its sync): the agent installs the shell hook `cwc_commands.sh` (sourced by /etc/profile and
/etc/bash.bashrc) and creates the log /var/log/cwc/commands.jsonl; the hook appends one JSON line per command
line the shell adds to its history (line, folder at the next prompt, time, exit status, history number, and the
session: the local runtime's id, or on EC2 the SSH connection's address and port, matched to sshd's login).
Off: the hook is removed and the log deleted, so nothing is written. Scripts and `ssh host command` are not
interactive and never run the hook; SFTP and scp run no shell.

Before a line leaves the workspace it is redacted: values of variables and options whose name says token,
secret, password, passphrase, API or access key, private key or credential; credentials in URLs
(`https://user:pw@host`); `Authorization:`/`Bearer` header values. The line is cut to 2,000 characters.
Not a lock: the student's own shell runs the hook (unsetting PROMPT_COMMAND, `set +o history` or HISTCONTROL's
ignorespace stop it, and ignoredups makes a repeated command one line).
"""

import os
import re

try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
    from provisioning.agent.cwc_transfers import arm_log, read_jsonl
except ImportError:  # pragma: no cover - the workspace's layout
    from cwc_transfers import arm_log, read_jsonl

COMMAND_LOG = "/var/log/cwc/commands.jsonl"
HOOK_NAME = "cwc_commands.sh"
PROFILE_D = "/etc/profile.d/cwc-commands.sh"  # EC2: login shells (SSH, the browser terminal)
BASHRC = "/etc/bash.bashrc"  # EC2: interactive shells started from them
BASHRC_MARK = "# cwc: typed commands (the course's integrity setting)"
MAX_LINE = 2000
MAX_TEXT = 300
REDACTED = "[redacted]"
SECRET_NAME = r"[A-Za-z0-9_.-]*(?:TOKEN|SECRET|PASSW(?:OR)?D|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)S?[A-Za-z0-9_.-]*"  # noqa: E501
VALUE = r"""(?:"[^"]*"|'[^']*'|[^\s;&|]+)"""
ASSIGNMENT = re.compile(rf"(?i)(\b{SECRET_NAME}=){VALUE}")
OPTION = re.compile(rf"(?i)((?:^|\s)--?{SECRET_NAME}(?:=|\s+)){VALUE}")
URL_CREDENTIALS = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@:]*:[^/\s@]*@")
HEADER = re.compile(r"(?i)\b(authorization:\s*|bearer\s+|x-api-key:\s*)(?:basic\s+|bearer\s+)?[^\s'\"]+")


def redact(line):
    """The command line with secrets replaced by [redacted], cut to MAX_LINE characters. Pure."""
    line = str(line)[: MAX_LINE * 2]
    line = URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", line)
    line = HEADER.sub(lambda m: m.group(1) + REDACTED, line)
    line = ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, line)
    line = OPTION.sub(lambda m: m.group(1) + REDACTED, line)
    return line[:MAX_LINE]


def _when(value, default):
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**33
    return value if ok else int(default)


def by_staff(who):
    """Whether a login was a staff member's certificate (key id "staff:..."): what they type in a student's
    workspace is not the student's (a debug session has its own recording). Pure."""
    return str(who or "").startswith("staff certificate 'staff:")


def command_events(records, sessions, event, now):
    """`command` events of the hook's records; `sessions` maps "ip port" to {"who", "session"} (EC2's sshd
    logins; the local runtime's records carry their session id). A record the hook did not write is skipped, and
    so is a line typed in a staff member's session."""
    events = []
    for rec in records:
        line = rec.get("line")
        if not isinstance(line, str) or not line.strip():
            continue
        ssh = " ".join(str(rec.get("ssh") or "").split()[:2])
        known = sessions.get(ssh) or {}
        if by_staff(known.get("who")):
            continue
        details = {"line": redact(line), "cwd": str(rec.get("cwd") or "")[:MAX_TEXT],
                   "session": str(rec.get("session") or known.get("session") or "")[:64]}  # fmt: skip
        if known.get("who"):
            details["who"] = str(known["who"])[:MAX_TEXT]
        for key in ("exit", "n"):
            if isinstance(rec.get(key), int) and not isinstance(rec.get(key), bool):
                details[key] = rec[key]
        events.append(event("command", details, _when(rec.get("at"), now)))
    return events


def scan_commands(state, sessions, event, now, log=COMMAND_LOG):
    """This scan's commands from the hook's log (state keeps the place; a replaced log starts over)."""
    return command_events(read_jsonl(log, state), sessions, event, now)


def arm_command_log(on, log=COMMAND_LOG):
    """The hook's log exists only while the course records commands (the student may append, not read it)."""
    arm_log(on, log)


def install_hook(on, agent_dir, profile_d=PROFILE_D, bashrc=BASHRC):
    """EC2: source the agent's hook from /etc/profile.d and /etc/bash.bashrc while on; off: remove both."""
    source = f"[ -r {profile_d} ] && . {profile_d}  {BASHRC_MARK}\n"
    try:
        with open(bashrc) as f:
            lines = f.readlines()
    except OSError:
        lines = []
    kept = [x for x in lines if BASHRC_MARK not in x]
    if not on:
        if os.path.lexists(profile_d):
            os.unlink(profile_d)
        if len(kept) != len(lines):
            _write(bashrc, "".join(kept), 0o644)
        return
    wanted = f". {os.path.join(agent_dir, HOOK_NAME)}\n"
    try:
        with open(profile_d) as f:
            same = f.read() == wanted
    except OSError:
        same = False
    if not same:  # asked every minute: written once
        _write(profile_d, wanted, 0o644)
    if len(kept) == len(lines):
        _write(bashrc, "".join(lines) + source, 0o644)


def _write(path, text, mode):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", mode)
    os.replace(path + ".tmp", path)


def local_etc(hook_path):
    """The local sandbox's /etc/profile and /etc/bash.bashrc while the course records commands. Pure."""
    line = f"[ -r {hook_path} ] && . {hook_path}\n"
    return {"profile": line, "bash.bashrc": line}
