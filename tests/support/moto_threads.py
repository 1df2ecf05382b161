"""Hand out a moto subnet's private IPs one request at a time.

The moto server answers each request in its own thread, and a subnet's next private IP comes from a generator
(`Subnet._subnet_ip_generator`) that is not thread-safe: two RunInstances in one subnet at the same moment (the
semester harness opens a class's workspaces side by side) can enter it together, and moto answers "ValueError:
generator already executing" with an HTML 500 page. EC2 has no such race. `serialize_subnet_ips` holds one lock
around moto's own allocation; nothing else changes.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.ec2.models.subnets import Subnet

MOTOS_ALLOCATION = Subnet.get_available_subnet_ip
LOCK = threading.Lock()


def serialized_allocation(self: Any, instance: Any) -> str:
    """moto's allocation, one thread at a time."""
    with LOCK:
        return MOTOS_ALLOCATION(self, instance)


def serialize_subnet_ips() -> None:
    """Patch moto (this process); idempotent."""
    Subnet.get_available_subnet_ip = serialized_allocation  # type: ignore[method-assign]
