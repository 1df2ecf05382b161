"""AwsBackend's part of the port for one instance's own data: its user data and its tags. Used by the local
runtime (the agent config an instance boots with) and the simulated agents (the lease they keep in a tag);
every AWS error maps to CloudError."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws_failures import TRANSPORT_FAILURES
from provisioning.backend import CloudError

TAG_PAGE = 1000  # resources per CreateTags call


@contextmanager
def _instance(action: str, instance_id: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        raise CloudError(f"AWS could not {action} {instance_id} ({code}): {message}") from exc
    except TRANSPORT_FAILURES as exc:
        raise CloudError(f"AWS could not {action} {instance_id}: {exc}") from exc


class InstanceMixin:
    """Reads an instance's user data and writes its tags (needs ec2)."""

    ec2: Any

    def user_data(self, instance_id: str) -> str:
        """The instance's user data as text ("" when it has none)."""
        with _instance("read the user data of", instance_id):
            raw = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        return base64.b64decode(raw.get("UserData", {}).get("Value", "") or b"").decode(errors="replace")

    def tag_instance(self, instance_id: str, tags: dict[str, str]) -> None:
        """Set tags on an instance (values replace earlier ones)."""
        self.tag_instances([instance_id], tags)

    def tag_instances(self, instance_ids: list[str], tags: dict[str, str]) -> None:
        """Set the same tags on several instances, 1,000 per call (values replace earlier ones)."""
        for i in range(0, len(instance_ids) if tags else 0, TAG_PAGE):
            ids = instance_ids[i : i + TAG_PAGE]
            with _instance("tag", ", ".join(ids)):
                self.ec2.create_tags(Resources=ids, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def untag_instance(self, instance_id: str, keys: list[str]) -> None:
        """Remove tags from an instance (a key it does not carry is no error)."""
        if keys:
            with _instance("untag", instance_id):
                self.ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": k} for k in keys])
