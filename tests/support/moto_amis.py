"""Give the tests' simulated AWS accounts moto's own default AMIs only, not its thousand-odd extra ones per region.

Each moto reset (one per test using `backend`) recreates the EC2 backend, and on the first EC2 call in a region
moto builds its AMIs anew: its 44 default ones (amis.json, which holds the Canonical Ubuntu images the tool and
the tests look up) plus, for that region, the "latest" and the ECS-optimised ones (30 and 1,227 in us-east-1),
decompressed and parsed from JSON each time. The tests look up only Canonical's images. With MOTO_AMIS_PATH set
to a copy of moto's own amis.json, moto loads those 44 only: the first describe_images after a reset took
53 ms of CPU and now takes 10 ms. Every EC2 call still goes to the real moto server.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import moto
from moto.utilities.utils import load_resource


def use_default_amis_only() -> None:
    """Point MOTO_AMIS_PATH (inherited by xdist workers and child processes) at moto's default AMIs."""
    if os.environ.get("MOTO_AMIS_PATH"):
        return
    path = Path(tempfile.gettempdir()) / f"cwc-moto-{moto.__version__}-amis.json"
    if not path.exists():
        part = path.with_name(f"{path.name}.{os.getpid()}")
        part.write_text(json.dumps(load_resource("ec2/resources/amis.json")), encoding="utf-8")
        part.replace(path)  # atomic: parallel runs never read half a file
    os.environ["MOTO_AMIS_PATH"] = str(path)
