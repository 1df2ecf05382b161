"""Look up one EC2 resource's tags in moto by its id, not by scanning every tag of the simulated account.

moto's `TaggedEC2Resource.get_tags` asks `describe_tags(filters={"resource-id": [id]})`, which walks every tag of
every resource in the region and regex-matches each resource id: a DescribeInstances of N tagged instances costs
N x (all tags), quadratic in the account's size. At 500 students (about 750 instances and as many volumes, a few
tags each) one DescribeInstances took about 2 s, most of it there. `index_tag_lookups` swaps in a dict lookup that
returns the same list (same keys, values, resource type, order; ids hold no wildcard, so moto's pattern matches one
id exactly; tests/unit/test_moto_tags.py compares the two). Only the simulator changes: every call still goes to
the real moto server through the tool's own boto3 code.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

MOTOS_GET_TAGS = TaggedEC2Resource.get_tags


def indexed_get_tags(self: Any) -> list[dict[str, str]]:
    """The resource's tags straight from the backend's per-resource dict (as moto's describe_tags builds them)."""
    if not self.id:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    tags = self.ec2_backend.tags.get(self.id, {})  # .get: never adds an entry to the defaultdict
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]


def index_tag_lookups() -> None:
    """Patch moto (this process) to look tags up by resource id; idempotent."""
    TaggedEC2Resource.get_tags = indexed_get_tags  # type: ignore[method-assign]
