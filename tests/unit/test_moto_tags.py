"""The bench's tag lookup for moto (tests/support/moto_tags.py) returns what moto's own returns, for every tagged
and untagged EC2 resource, and DescribeInstances answers the same with it. Real moto server (in this process)."""

from __future__ import annotations

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource

from tests.support.moto_tags import MOTOS_GET_TAGS, index_tag_lookups, indexed_get_tags

MANAGED = [{"Name": "tag:cwc:managed-by", "Values": ["cwc-test"]}]


def _resources(region: str) -> list[object]:
    ec2 = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    instances = [i for r in ec2.reservations.values() for i in r.instances]
    return instances + list(ec2.volumes.values()) + list(ec2.snapshots.values())


def test_the_indexed_lookup_returns_motos_tags_for_every_resource(backend):  # type: ignore[no-untyped-def]
    ec2 = backend.ec2
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for n in range(3):
        tags = [{"Key": "cwc:managed-by", "Value": "cwc-test"}, {"Key": "cwc:workspace-id", "Value": str(n)}]
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
                          TagSpecifications=[{"ResourceType": "instance", "Tags": tags},
                                             {"ResourceType": "volume", "Tags": tags[:1]}])  # fmt: skip
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]  # no tags
    ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags[:1]}])
    before = ec2.describe_instances(Filters=MANAGED)["Reservations"]
    resources = _resources(backend.region)
    assert sum(1 for r in resources if MOTOS_GET_TAGS(r)) >= 7  # 3 instances, 3 volumes, 1 snapshot tagged
    assert any(not MOTOS_GET_TAGS(r) for r in resources)  # and the untagged volume
    for r in resources:
        assert indexed_get_tags(r) == MOTOS_GET_TAGS(r)
    try:
        index_tag_lookups()
        assert ec2.describe_instances(Filters=MANAGED)["Reservations"] == before
    finally:
        TaggedEC2Resource.get_tags = MOTOS_GET_TAGS  # type: ignore[method-assign]
