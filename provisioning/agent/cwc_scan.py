"""The agent's scan beyond files and commits: downloads, extractions, typed commands, and on EC2 SSH sessions
and Jupyter.

The scan state is one JSON object: {"files": {...}, "transfers": {...}, "ssh": {...}, "jupyter": {...},
"commands": {...}} (an older flat object is the files part). Typed commands come from the shell hook's log,
which exists only while the course records them (cwc_commands). The local runtime runs the same scan in each
sandbox with ec2=False: it sees logins, SFTP and scp itself, and Jupyter from the sandbox's processes. Stdlib only.
"""

import os
import re
import subprocess

try:  # in the tool: a package; on a workspace: files side by side in the agent's folder
    from provisioning.agent.cwc_commands import COMMAND_LOG, scan_commands
    from provisioning.agent.cwc_scp import scp_events
    from provisioning.agent.cwc_sshlog import AUTH_LOG, scan_ssh_log
    from provisioning.agent.cwc_transfers import TOOL_LOG, arm_log, scan_transfers
except ImportError:  # pragma: no cover - the workspace's layout
    from cwc_commands import COMMAND_LOG, scan_commands
    from cwc_scp import scp_events
    from cwc_sshlog import AUTH_LOG, scan_ssh_log
    from cwc_transfers import TOOL_LOG, arm_log, scan_transfers

LISTEN_USER = re.compile(r'\("[^"]*",pid=(\d+),')


def split_state(raw):
    """The parts of a scan state (an older flat object is all files)."""
    if isinstance(raw, dict) and isinstance(raw.get("files"), dict):
        return raw
    return {"files": raw if isinstance(raw, dict) else {}}


def jupyter_pids(proc="/proc"):
    """Processes whose command line names Jupyter (`jupyter-lab`, `python -m jupyter notebook`, ...)."""
    pids = []
    for name in os.listdir(proc):
        if name.isdigit():
            try:
                with open(os.path.join(proc, name, "cmdline"), "rb") as f:
                    if b"jupyter" in f.read():
                        pids.append(int(name))
            except OSError:
                continue
    return pids


def listening_ports(ss_output, pids):
    """TCP ports listened on by these processes, from `ss -ltnpH` output. Pure."""
    ports = set()
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) >= 4 and any(int(p) in pids for p in LISTEN_USER.findall(line)):
            port = fields[3].rsplit(":", 1)[-1]
            if port.isdigit():
                ports.add(int(port))
    return sorted(ports)


def jupyter_status(run=subprocess.run, proc="/proc"):
    """{"running", "ports"}: whether Jupyter runs, and where it listens (ss needs root to name other users')."""
    pids = set(jupyter_pids(proc))
    if not pids:
        return {"running": False, "ports": []}
    try:
        out = run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return {"running": True, "ports": listening_ports(out, pids)}


def arm_tool_log(collecting, log=TOOL_LOG):
    """Create the tool log while the course collects activity (the wrappers record only then); remove it when not.

    The student may append (the wrappers run as the student) but not read it; it is removed when collection stops.
    """
    arm_log(collecting, log)


def more_events(home, state, file_events, now, event, ec2, run=subprocess.run, log=TOOL_LOG, commands=COMMAND_LOG,
                auth_log=AUTH_LOG):  # fmt: skip
    """Downloads, extractions and typed commands; on EC2 also SSH logins, logouts, SFTP and scp transfers and
    Jupyter starting or ending (the SSH log read first, so an scp run or a typed command is matched to its login)."""
    first_scan = "transfers" not in state
    events = scan_ssh_log(state.setdefault("ssh", {}), home, event, now, run, auth_log) if ec2 else []
    ssh = state.get("ssh", {})
    sessions = {**ssh.get("closed", {}), **ssh.get("open", {})}
    scp = {"scp": lambda records: scp_events(records, home, sessions, event)} if ec2 else {}  # locally: the runtime's
    events += scan_transfers(home, state.setdefault("transfers", {}), file_events, state["files"], now, event, log,
                             first_scan, **scp)  # fmt: skip
    if ec2:
        status, last = jupyter_status(run), state.get("jupyter", {"running": False, "ports": []})
        if status != last:
            events.append(event("jupyter", status, now))
            state["jupyter"] = status
    events += scan_commands(state.setdefault("commands", {}), sessions, event, now, commands)
    return events
