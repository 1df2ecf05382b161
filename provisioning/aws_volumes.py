"""AwsBackend's part of the port for instances' EBS volumes: what each one stores (size, type, since when), read for
many instances at once. Every AWS error maps to CloudError."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from provisioning.aws_failures import TRANSPORT_FAILURES
from provisioning.backend import CloudError, InstanceInfo, VolumeInfo

VOLUME_FILTER_VALUES = 200  # values per filter AWS accepts: one DescribeVolumes call reads up to 200 volumes


class VolumeMixin:
    """Reads the volumes instances' BlockDeviceMappings name (needs ec2)."""

    ec2: Any

    def attached_volumes(self, instances: Sequence[InstanceInfo]) -> dict[str, list[VolumeInfo]]:
        """Each instance's EBS volumes with size and type, keyed by instance id (an instance with none: []).

        The volume ids come from the instances' BlockDeviceMappings (already read by DescribeInstances); their sizes
        and types from DescribeVolumes, one call per 200 volumes (by filter, so a volume deleted meanwhile is simply
        absent rather than failing the call). DeleteOnTermination is the mapping's (DescribeVolumes may omit it)."""
        devices = {d.volume_id: (i.instance_id, d.delete_on_termination) for i in instances for d in i.block_devices}
        out: dict[str, list[VolumeInfo]] = {i.instance_id: [] for i in instances}
        ids = sorted(devices)
        for at in range(0, len(ids), VOLUME_FILTER_VALUES):
            for raw in self._volumes(ids[at : at + VOLUME_FILTER_VALUES]):
                instance_id, delete = devices[raw["VolumeId"]]
                out[instance_id].append(
                    VolumeInfo(
                        volume_id=raw["VolumeId"],
                        instance_id=instance_id,
                        size_gb=int(raw["Size"]),
                        volume_type=raw.get("VolumeType", ""),
                        created_at=raw.get("CreateTime"),
                        delete_on_termination=delete,
                    )
                )
        return out

    def _volumes(self, volume_ids: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = self.ec2.describe_volumes(
                    Filters=[{"Name": "volume-id", "Values": volume_ids}],
                    MaxResults=500,
                    **({"NextToken": token} if token else {}),
                )
            except ClientError as exc:
                err = exc.response.get("Error", {})
                raise CloudError(
                    f"AWS could not describe volumes ({err.get('Code', '?')}): {err.get('Message', '')}"
                ) from exc
            except TRANSPORT_FAILURES as exc:
                raise CloudError(f"AWS could not describe volumes: {exc}") from exc
            found += page.get("Volumes", [])
            token = page.get("NextToken")
            if not token:
                return found
