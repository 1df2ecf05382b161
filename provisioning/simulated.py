"""Simulated AWS for the embedded default: seed the moto server like a real account, and play the agents.

Development only: the same AwsBackend code runs against moto; this module only prepares what an AWS
account already has (public image parameters, a bucket, the instance profile) and sends the heartbeats
a real workspace's agent would send, reading each agent's config from its instance's user data.
"""

from __future__ import annotations

import base64
import logging
import random

import requests

from config.catalog import load_catalog
from provisioning.aws import AwsBackend
from provisioning.userdata import agent_config_from_user_data

log = logging.getLogger(__name__)


SIMULATED_IMAGE_PREFIX = "/cwc-sim"


def seed_simulated_aws(backend: AwsBackend) -> None:
    """Create the bucket and instance profile, and publish the catalog's image parameters.

    The simulated account cannot write public parameters (names under /aws/ are AWS's), so it mirrors
    them under SIMULATED_IMAGE_PREFIX; the backend reads them there when image_parameter_prefix is set.
    """
    if not backend.image_parameter_prefix:
        backend.image_parameter_prefix = SIMULATED_IMAGE_PREFIX
    backend.ensure_bucket()
    backend.ensure_instance_profile()
    images = backend.ec2.describe_images(Owners=["099720109477"])["Images"]  # Canonical's Ubuntu images
    ami = sorted(i["ImageId"] for i in images)[0]
    for template in load_catalog().templates:
        if template.image.startswith("ssm:"):
            name = backend.image_parameter_prefix + template.image.removeprefix("ssm:")
            try:
                backend.ssm.get_parameter(Name=name)
            except backend.ssm.exceptions.ParameterNotFound:
                backend.ssm.put_parameter(Name=name, Value=ami, Type="String", DataType="aws:ec2:image")


def simulate_agents(
    backend: AwsBackend,
    *,
    idle_after_beats: int = 5,
    http: requests.Session | None = None,
    rng: random.Random | None = None,
) -> int:
    """Send one heartbeat per running managed instance; each goes idle after a few active beats."""
    http = http or requests.Session()
    rng = rng or random.Random()
    sent = 0
    for inst in backend.describe_managed():
        if inst.state != "running":
            continue
        raw = backend.ec2.describe_instance_attribute(InstanceId=inst.instance_id, Attribute="userData")
        text = base64.b64decode(raw.get("UserData", {}).get("Value", "") or b"").decode(errors="replace")
        if "CWC_CONFIG" not in text:
            continue
        cfg = agent_config_from_user_data(text)
        beats = int(inst.tags.get("cwc:sim-beats", "0"))  # the simulator's own memory, kept on the instance
        active = beats < idle_after_beats
        body = {
            "workspace_id": cfg["workspace_id"],
            "ssh_sessions": 1 if active else 0,
            "jupyter_active": active,
            "cpu_pct": round(rng.uniform(20, 80), 2) if active else 0.5,
            "changed_files": rng.randint(1, 5) if active else 0,
        }
        try:
            http.post(str(cfg["url"]), json=body, headers={"Authorization": f"Bearer {cfg['token']}"}, timeout=5)
            sent += 1
        except requests.RequestException as exc:
            log.info("simulated agent could not reach the tool: %s", exc)
        backend.ec2.create_tags(Resources=[inst.instance_id], Tags=[{"Key": "cwc:sim-beats", "Value": str(beats + 1)}])
    return sent
