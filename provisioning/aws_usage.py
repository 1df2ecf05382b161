"""AwsBackend's part of the port for what a course stores and sends: EFS size, snapshots and S3 archives by
size, and data transfer out (CloudWatch NetworkOut). Read by the hourly course-usage booking; the local runtime
reports its instances' NetworkOut here (what EC2 does for a real instance). Every AWS error maps to CloudError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.aws_archive import archive_prefix
from provisioning.aws_failures import AWS_FAILURES
from provisioning.backend import CloudError

GIB = 1024**3


@dataclass(frozen=True)
class StoredItem:
    """One stored thing that costs by size: what it is, its size in bytes and since when it exists."""

    kind: str  # efs | snapshot | archive
    ref: str
    size_bytes: int
    since: datetime


@contextmanager
def _usage(what: str) -> Iterator[None]:
    try:
        yield
    except AWS_FAILURES as exc:
        raise CloudError(f"AWS could not report {what}: {exc}") from exc


class UsageMixin:
    """Reads sizes and traffic (needs efs, ec2, s3, cloudwatch, bucket)."""

    efs: Any
    ec2: Any
    s3: Any
    cloudwatch: Any
    bucket: str

    def course_stored(self, course_key: str, file_system_id: str) -> list[StoredItem]:
        """The course's EFS file system, its snapshots (tag cwc:course) and its S3 archives, with sizes."""
        items: list[StoredItem] = []
        if file_system_id:
            with _usage("the course file system's size"):
                found = self.efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"]
            items += [
                StoredItem("efs", f["FileSystemId"], int(f["SizeInBytes"]["Value"]), f["CreationTime"]) for f in found
            ]
        tag = [{"Name": "tag:cwc:course", "Values": [course_key]}]
        with _usage("the course's snapshots"):
            for page in self.ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=tag):
                items += [
                    StoredItem("snapshot", s["SnapshotId"], int(s["VolumeSize"]) * GIB, s["StartTime"])
                    for s in page["Snapshots"]
                ]
        with _usage("the course's archives"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=archive_prefix(course_key)
            )
            for page in pages:
                items += [
                    StoredItem("archive", o["Key"], int(o["Size"]), o["LastModified"]) for o in page.get("Contents", [])
                ]
        return items

    def network_out(self, instance_id: str, start: datetime, end: datetime) -> int:
        """Bytes the instance sent out from start to end (CloudWatch NetworkOut, Sum of hourly datapoints)."""
        with _usage(f"the traffic of {instance_id}"):
            points = self.cloudwatch.get_metric_statistics(
                Namespace="AWS/EC2",
                MetricName="NetworkOut",
                Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
                StartTime=start,
                EndTime=end,
                Period=3600,
                Statistics=["Sum"],
            )["Datapoints"]
        return int(sum(p["Sum"] for p in points))

    def report_network_out(self, instance_id: str, at: datetime, sent_bytes: int) -> None:
        """Publish bytes an instance sent as one NetworkOut datapoint at `at` (the local runtime plays EC2)."""
        with _usage(f"the traffic of {instance_id}"):
            self.cloudwatch.put_metric_data(
                Namespace="AWS/EC2",
                MetricData=[
                    {
                        "MetricName": "NetworkOut",
                        "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                        "Timestamp": at,
                        "Value": float(sent_bytes),
                        "Unit": "Bytes",
                    }
                ],
            )
