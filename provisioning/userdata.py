"""User data for a workspace: mount course materials read-only, install keys and the agent. Pure."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path

from provisioning.agent.cwc_agent import BANNER_PATH, RESUMED, login_banner
from provisioning.agent.cwc_toolwrap import TOOLS
from provisioning.ssh_ca import VIEW_USER, view_principal

AGENT_SOURCE = Path(__file__).parent / "agent" / "cwc_agent.py"
AGENT_FILES = ("cwc_agent.py", "cwc_scan.py", "cwc_sshlog.py", "cwc_toolargs.py", "cwc_transfers.py", "cwc_toolwrap.py",
               "cwc_scp.py", "cwc_commands.py", "cwc_commands.sh")  # fmt: skip
REVOKED_KEYS = "/etc/ssh/cwc_revoked.krl"  # an empty KRL first: sshd refuses every key when the file is missing
DEBUG_FILES = ("cwc_cast.py", "cwc_debug_shell.py", "cwc_debugrec.py")  # EC2 debug sessions: recorder and agent side
AGENT_HOME = "/usr/local/lib/cwc-agent"


@dataclass(frozen=True)
class UserDataInput:
    """What the first boot needs to know."""

    workspace_id: int
    agent_url: str
    agent_token: str
    os_user: str
    ssh_public_keys: tuple[str, ...]
    course_slug: str
    region: str
    file_system_id: str
    access_point_id: str
    read_only: bool = True
    boot_grace_s: int = 900  # the first lease, until the agent's first answer from the tool
    ca_public_key: str = ""  # the course's SSH user CA: staff log in with short-lived certificates it signs
    restore_url: str = ""  # a restored student's archived home: a presigned S3 GET (provisioning.restore_boot)
    restore_sha256: str = ""
    collects_activity: bool = False  # the course's integrity settings at launch: the first login banner says them
    records_commands: bool = False  # (the agent rewrites it from each heartbeat answer when they change)

    @property
    def mount_point(self) -> str:
        return f"/mnt/{self.course_slug}-materials"


def sshd_config(d: UserDataInput) -> str:
    """sshd's drop-in: keys only, the course CA trusted for this workspace's login principal. Pure."""
    return (
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"
        "AuthorizedKeysFile .ssh/authorized_keys\n"
        "TrustedUserCAKeys /etc/ssh/cwc_user_ca.pub\n"
        "AuthorizedPrincipalsFile /etc/ssh/cwc_principals/%u\n"
        f"Banner {BANNER_PATH}\n"
        "LogLevel VERBOSE\n"  # logs the key's fingerprint, or the certificate's key id and serial, of each login
        f"RevokedKeys {REVOKED_KEYS}\n"  # ended staff sessions' certificates (the agent writes it from the tool)
        f"{debug_sshd_match()}"
    )


def debug_sshd_match() -> str:
    """The view user logs in with a course-CA certificate only: its home is the student's (read-only), so the
    student's authorized_keys must not open it; no forwarding (a tunnel to the student's Jupyter would act as the
    student). Last in the drop-in (a Match block runs to the file's end)."""
    return (
        f"Match User {VIEW_USER}\n    AuthorizedKeysFile none\n"  # a read-only look: no tunnel to the student's
        "    AllowTcpForwarding no\n    AllowStreamLocalForwarding no\n    PermitTunnel no\n"  # Jupyter either
        "    X11Forwarding no\n    AllowAgentForwarding no\n"
    )


def debug_part(d: UserDataInput) -> str:
    """Staff debug sessions (provisioning.debug_shell): the view user, whose home the agent mounts at each boot as
    a read-only, id-mapped view of the student's home, accepts only `ws<id>-view` certificates; both modes run the
    recorder their certificate forces, which leaves its casts in a spool only root can list."""
    return f"""# Staff debug sessions: view-only as {VIEW_USER} (the student's home, read-only), recorded by the agent
id {VIEW_USER} >/dev/null 2>&1 \\
  || useradd --system --no-create-home --home-dir /home/{VIEW_USER} --shell /bin/bash {VIEW_USER}
usermod -p '*' {VIEW_USER}
install -d -m 755 -o root -g root /home/{VIEW_USER} /etc/ssh/cwc_principals
echo '{view_principal(d.workspace_id)}' > /etc/ssh/cwc_principals/{VIEW_USER}
install -d -m 1733 -o root -g root /var/spool/cwc-debug
[ -s {REVOKED_KEYS} ] || ssh-keygen -q -k -f {REVOKED_KEYS}
"""


# sftp-server logs each file it closes (bytes read and written) at INFO; scp uses SFTP since OpenSSH 9. The main
# config defines the subsystem (a second definition is an error), so its own line gets the flag.
SFTP_LOGGING = r"sed -i -E '/^\s*Subsystem\s+sftp\s/{/-l INFO/!s/$/ -l INFO/}' /etc/ssh/sshd_config"


SLEEP_HOOK = "/usr/lib/systemd/system-sleep/cwc-lease"


def sleep_hook(grace_min: int) -> str:
    """systemd-sleep runs this as root with `pre` before a suspend or hibernation and `post` after the resume.
    The lease's scheduled poweroff is wall-clock: after a resume its time has passed and it would fire at once, so
    `pre` cancels it and `post` schedules the boot grace again and leaves a marker for the agent (which holds the
    same grace: the lease is re-earned from the tool, or the instance powers off). Pure."""
    return f"""#!/bin/bash
# Cloud Workstation: the workspace lease across hibernation (provisioning/userdata.py sleep_hook)
marker="${{CWC_RESUMED:-{RESUMED}}}"
case "$1" in
  pre) shutdown -c "cwc: sleeping; the lease is held again at resume" || true ;;
  post)
    shutdown -P +{grace_min} "cwc: resumed; no agent lease yet" || true
    mkdir -p -m 700 "$(dirname "$marker")" && : > "$marker" ;;
esac
exit 0
"""


USER_DATA_LIMIT = 16 * 1024  # EC2 refuses user data above 16 KB (before base64)


@functools.cache
def agent_bundle() -> bytes:
    """The agent's files as a tar.gz, byte-for-byte the same for the same files (no times, no owners).

    Too large for user data (about 33 KB compressed against EC2's 16 KB limit): the tool serves it at
    /api/agent/bundle.tar.gz and the user data fetches it over HTTPS and checks its SHA-256 before unpacking."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name in AGENT_FILES + DEBUG_FILES:
            data = (AGENT_SOURCE.parent / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@functools.cache
def agent_bundle_sha256() -> str:
    """The SHA-256 the user data checks the downloaded bundle against."""
    return hashlib.sha256(agent_bundle()).hexdigest()


def bundle_url(agent_url: str) -> str:
    """Where the bundle is served: next to the heartbeat endpoint."""
    return agent_url.rsplit("/", 1)[0] + "/bundle.tar.gz"


def _sshd_part(d: UserDataInput) -> str:
    ca = d.ca_public_key.strip() or "# no staff access: the course has no SSH CA yet"
    return f"""# SSH: the student's keys (above), and staff certificates (course CA, principal ws{d.workspace_id})
cat > /etc/ssh/cwc_user_ca.pub <<'CWC_CA'
{ca}
CWC_CA
install -d -m 755 /etc/ssh/cwc_principals /etc/ssh/sshd_config.d
echo 'ws{d.workspace_id}' > /etc/ssh/cwc_principals/{d.os_user}
cat > {BANNER_PATH} <<'CWC_BANNER'
{login_banner(d.collects_activity, d.records_commands)}CWC_BANNER
cat > /etc/ssh/sshd_config.d/60-cwc.conf <<'CWC_SSHD'
{sshd_config(d)}CWC_SSHD
{SFTP_LOGGING}
sshd -t && (systemctl reload ssh || systemctl reload sshd || true)
"""


def render_user_data(d: UserDataInput) -> str:
    """The cloud-init shell script (bash) for a workspace."""
    home = f"/home/{d.os_user}"
    config = json.dumps(
        {
            "url": d.agent_url,
            "token": d.agent_token,
            "workspace_id": d.workspace_id,
            "user": d.os_user,
            "home": home,
            "boot_grace_s": d.boot_grace_s,
            "materials": d.mount_point,
            # a restored student's home: the agent fetches, checks and unpacks it at its first start, and reports
            # how it went (provisioning.agent.cwc_agent.restore_once; provisioning.restore_boot)
            **({"restore": {"url": d.restore_url, "sha256": d.restore_sha256}} if d.restore_url else {}),
        }
    )
    links, names = " ".join(TOOLS), ", ".join(TOOLS)  # linked to the recorder ahead in PATH
    keys = "\n".join(k.strip() for k in d.ssh_public_keys)
    options = "tls,_netdev,noresvport" + (",ro" if d.read_only else "") + f",accesspoint={d.access_point_id}"
    mount = shlex.quote(d.mount_point)
    access = "student (read-only)" if d.read_only else "staff (read-write)"
    grace_min = max(1, -(-d.boot_grace_s // 60))
    return f"""#!/bin/bash
# Cloud Workstation workspace {d.workspace_id}: course materials, SSH keys, activity agent.
set -euo pipefail
# Fail closed: power off after the boot grace unless the agent starts and takes the lease over (it reschedules).
shutdown -P +{grace_min} "cwc: no agent lease yet" || true
# After a resume from hibernation the scheduled poweroff's time has passed: cancel it before sleeping, schedule
# the boot grace again after (the agent holds the same grace until the tool renews or stops).
install -d -m 755 -o root -g root {SLEEP_HOOK.rsplit("/", 1)[0]}
cat > {SLEEP_HOOK} <<'CWC_SLEEP'
{sleep_hook(grace_min)}CWC_SLEEP
chown root:root {SLEEP_HOOK} && chmod 755 {SLEEP_HOOK}
# The student's login user gets no sudo and no root-equivalent group: it cannot stop the agent, cancel the
# scheduled poweroff, read the agent's token (root-only file, instance metadata closed to non-root) or add keys.
for group in sudo admin wheel lxd docker; do gpasswd -d {d.os_user} "$group" 2>/dev/null || true; done
rm -f /etc/sudoers.d/90-cloud-init-users
grep -rlw {d.os_user} /etc/sudoers.d 2>/dev/null | xargs -r rm -f
install -d -m 755 /etc/polkit-1/rules.d
cat > /etc/polkit-1/rules.d/10-cwc-no-power.rules <<'CWC_POLKIT'
polkit.addRule(function(action, subject) {{
    if (action.id.indexOf("org.freedesktop.login1.") == 0 && subject.user != "root") {{ return polkit.Result.NO; }}
}});
CWC_POLKIT
iptables -A OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT || true
install -d -m 700 -o {d.os_user} -g {d.os_user} {home}/.ssh
cat > {home}/.ssh/authorized_keys <<'CWC_KEYS'
# managed by Cloud Workstation: revoked keys are removed within a minute
{keys}
CWC_KEYS
chown {d.os_user}:{d.os_user} {home}/.ssh/authorized_keys && chmod 600 {home}/.ssh/authorized_keys
{debug_part(d)}{_sshd_part(d)}# Course materials: shared EFS through the {access} access point
apt-get update -y && apt-get install -y amazon-efs-utils || apt-get install -y nfs-common
# tmux keeps the browser terminal's shell across reconnects (Ubuntu images ship it; a trimmed image may not)
command -v tmux >/dev/null || apt-get install -y tmux || echo "cwc: no tmux; terminals end with their connection"
install -d -m 755 {mount}
echo "{d.file_system_id}:/ {d.mount_point} efs {options} 0 0" >> /etc/fstab
mount {mount} || echo "cwc: materials mount will retry at next boot"
# Activity agent, as root (heartbeats over HTTPS with this workspace's own token; holds the lease's poweroff)
install -d -m 700 /var/lib/cwc-agent
umask 077
cat > /etc/cwc-agent.json <<'CWC_CONFIG'
{config}
CWC_CONFIG
install -d -m 755 {AGENT_HOME}
for attempt in $(seq 1 30); do  # the tool's agent bundle, checked against the SHA-256 this script was made with
  curl -fsS --max-time 30 -o /tmp/cwc-agent.tgz {shlex.quote(bundle_url(d.agent_url))} \
    && echo "{agent_bundle_sha256()}  /tmp/cwc-agent.tgz" | sha256sum -c --quiet && break
  rm -f /tmp/cwc-agent.tgz; sleep 10
done
tar -xzf /tmp/cwc-agent.tgz --no-same-owner -C {AGENT_HOME} && rm -f /tmp/cwc-agent.tgz
# {names}: recorded (when the course collects activity) by the agent's wrapper, ahead in PATH
for tool in {links}; do ln -sf {AGENT_HOME}/cwc_toolwrap.py /usr/local/bin/$tool; done
install -d -m 755 /var/log/cwc
cat > /etc/systemd/system/cwc-agent.service <<'CWC_UNIT'
[Unit]
Description=Cloud Workstation activity agent and lease
After=network-online.target
[Service]
User=root
ExecStart=/usr/bin/python3 -s -E {AGENT_HOME}/cwc_agent.py
Restart=always
RestartSec=5
[Install]
WantedBy=multi-user.target
CWC_UNIT
systemctl daemon-reload && systemctl enable --now cwc-agent.service
"""


def agent_config_from_user_data(user_data: str) -> dict[str, object]:
    """Read the agent's config back out of rendered user data (the simulated agent does this)."""
    start = user_data.index("<<'CWC_CONFIG'\n") + len("<<'CWC_CONFIG'\n")
    return json.loads(user_data[start : user_data.index("\nCWC_CONFIG", start)])  # type: ignore[no-any-return]
