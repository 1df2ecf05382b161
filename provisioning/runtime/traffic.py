"""The runtime's data transfer out, as EC2 reports it: the bytes its SSH server writes to each workspace's clients
(every session's output, SFTP and scp downloads, SSH's own framing and key exchange; TCP/IP headers are not
counted), published once per sync pass as a CloudWatch `NetworkOut` datapoint for the instance, which the hourly
course-usage booking then reads like an EC2 instance's. Counts not yet published are kept across a failed call."""

from __future__ import annotations

import logging
from datetime import datetime

from provisioning.backend import CloudBackend, CloudError

log = logging.getLogger("provisioning.runtime")


class TrafficOut:
    """Bytes sent per instance since the last publish (counted on the event loop, published off it)."""

    def __init__(self) -> None:
        self.pending: dict[str, int] = {}

    def add(self, instance_id: str, n: int) -> None:
        self.pending[instance_id] = self.pending.get(instance_id, 0) + n

    def take(self) -> dict[str, int]:
        """What to publish now (non-zero counts); the tally starts again from zero."""
        taken = {i: n for i, n in self.pending.items() if n}
        self.pending = {}
        return taken

    def give_back(self, unsent: dict[str, int]) -> None:
        """Counts a publish could not send: added back, published with the next pass."""
        for instance_id, n in unsent.items():
            self.add(instance_id, n)


def publish(backend: CloudBackend, counts: dict[str, int], at: datetime) -> dict[str, int]:
    """Report each instance's bytes to CloudWatch (blocking: run off the event loop); returns what was not sent."""
    unsent: dict[str, int] = {}
    for instance_id, n in sorted(counts.items()):
        try:
            backend.report_network_out(instance_id, at, n)
        except CloudError:
            log.warning("NetworkOut of %s (%d bytes) not published; kept for the next pass", instance_id, n)
            unsent[instance_id] = n
    return unsent
