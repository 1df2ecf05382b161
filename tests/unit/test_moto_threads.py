"""The test and bench moto server hands out a subnet's private IPs under one lock (tests/support/moto_threads.py):
the patched method holds the lock while moto's own allocation runs, and the IPs stay moto's. Real moto."""

from __future__ import annotations

import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.subnets import Subnet

from tests.support import moto_threads


def test_moto_hands_out_subnet_ips_under_the_lock(backend, monkeypatch):  # type: ignore[no-untyped-def]
    assert Subnet.get_available_subnet_ip is moto_threads.serialized_allocation  # the moto_url fixture patched it
    held: list[bool] = []

    real = moto_threads.MOTOS_ALLOCATION

    def motos(self, instance):  # type: ignore[no-untyped-def]
        held.append(moto_threads.LOCK.locked())
        return real(self, instance)

    monkeypatch.setattr(moto_threads, "MOTOS_ALLOCATION", motos)
    by_zone = next(iter(ec2_backends[DEFAULT_ACCOUNT_ID][backend.region].subnets.values()))
    subnet = next(iter(by_zone.values()))
    ips: list[str] = []
    threads = [threading.Thread(target=lambda: ips.append(subnet.get_available_subnet_ip(None))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert held == [True] * 8 and len(set(ips)) == 8 and all(ip.startswith("172.31.") for ip in ips)
