"""Simulated AWS for the embedded default: seed the moto server like a real account.

Development only: the same AwsBackend code runs against moto; this module only prepares what an AWS
account already has (public image parameters, a bucket, the instance profile). The instances' side (their
agents and leases) is played by its own process, provisioning.sim_host.
"""

from __future__ import annotations

import logging

from config.catalog import load_catalog
from provisioning.aws import AwsBackend

log = logging.getLogger(__name__)


SIMULATED_IMAGE_PREFIX = "/cwc-sim"
GET_PARAMETERS_MAX = 10  # names per SSM GetParameters call


def seed_simulated_aws(backend: AwsBackend) -> None:
    """Create the bucket and instance profile, and publish the catalog's image parameters.

    The simulated account cannot write public parameters (names under /aws/ are AWS's), so it mirrors
    them under SIMULATED_IMAGE_PREFIX; the backend reads them there when image_parameter_prefix is set.
    """
    if not backend.image_parameter_prefix:
        backend.image_parameter_prefix = SIMULATED_IMAGE_PREFIX
    backend.ensure_bucket()
    backend.ensure_instance_profile()
    names = sorted(
        {
            backend.image_parameter_prefix + t.image.removeprefix("ssm:")
            for t in load_catalog().templates
            if t.image.startswith("ssm:")
        }
    )
    missing = [
        name
        for start in range(0, len(names), GET_PARAMETERS_MAX)
        for name in backend.ssm.get_parameters(Names=names[start : start + GET_PARAMETERS_MAX])["InvalidParameters"]
    ]
    if not missing:
        return
    images = backend.ec2.describe_images(Owners=["099720109477"])["Images"]  # Canonical's Ubuntu images
    ami = sorted(i["ImageId"] for i in images)[0]
    for name in missing:
        backend.ssm.put_parameter(Name=name, Value=ami, Type="String", DataType="aws:ec2:image")
