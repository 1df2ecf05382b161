"""On EC2 the user data configures sshd to trust the course CA for the workspace's login: `sshd -t` accepts it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from provisioning.ssh_keys import generate_key_pair
from provisioning.userdata import UserDataInput, render_user_data


def _user_data(ca: str) -> str:
    return render_user_data(
        UserDataInput(
            workspace_id=42,
            agent_url="https://tool/api/agent/heartbeat",
            agent_token="t",
            os_user="ubuntu",
            ssh_public_keys=(generate_key_pair("emily")[1],),
            course_slug="cs229",
            region="us-east-1",
            file_system_id="fs-1",
            access_point_id="fsap-1",
            ca_public_key=ca,
        )  # fmt: skip
    )


def _heredoc(text: str, marker: str) -> str:
    match = re.search(rf"<<'{marker}'\n(.*?)\n?{marker}\n", text, re.S)
    assert match, marker
    return match.group(1) + "\n"


def _install(user_data: str, root: Path) -> Path:
    """Write what the user data writes under /etc/ssh into `root`, with a host key and a main config."""
    for marker, name in (("CWC_CA", "cwc_user_ca.pub"), ("CWC_BANNER", "cwc_banner")):
        (root / name).write_text(_heredoc(user_data, marker))
    (root / "cwc_principals").mkdir()
    principal = re.search(r"echo '(ws\d+)' > /etc/ssh/cwc_principals/(\w+)", user_data)
    assert principal
    (root / "cwc_principals" / principal.group(2)).write_text(principal.group(1) + "\n")
    dropin = _heredoc(user_data, "CWC_SSHD").replace("/etc/ssh/", f"{root}/")
    (root / "60-cwc.conf").write_text(dropin)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host")], check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd -t wants its privilege separation folder
    main = root / "sshd_config"
    main.write_text(f"Include {root}/60-cwc.conf\nHostKey {root}/host\nUsePAM no\n")
    return main


def test_user_data_sshd_config_passes_sshd_t_and_trusts_the_course_ca(tmp_path):
    ca = generate_key_pair("cwc-course-1-ca")[1]
    user_data = _user_data(ca)
    config = _install(user_data, tmp_path)
    done = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    effective = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(config), "-C", "user=ubuntu,host=x,addr=127.0.0.1"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"trustedusercakeys {tmp_path}/cwc_user_ca.pub" in effective
    assert f"authorizedprincipalsfile {tmp_path}/cwc_principals/%u" in effective
    assert "passwordauthentication no" in effective
    assert (tmp_path / "cwc_user_ca.pub").read_text().strip() == ca
    assert (tmp_path / "cwc_principals" / "ubuntu").read_text() == "ws42\n"


def test_sshd_t_rejects_a_broken_config_so_the_check_can_fail(tmp_path):
    config = _install(_user_data(generate_key_pair("ca")[1]), tmp_path)
    (tmp_path / "60-cwc.conf").write_text((tmp_path / "60-cwc.conf").read_text() + "TrustedUserCAKey nowhere\n")
    assert subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True).returncode != 0
