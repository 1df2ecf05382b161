"""The CloudBackend port: what the tool needs from a cloud, in its own words and errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from provisioning.aws_archive import ArchiveResult, HomeArchive
    from provisioning.aws_materials import MaterialUploads
    from provisioning.aws_usage import StoredItem

MANAGED_BY = "cloudworkstation-classroom"


class CloudError(Exception):
    """A cloud call failed in a way a person can act on; the message says how."""


class CapacityError(CloudError):
    """No capacity for the instance type in any subnet we tried."""


class MaterialExists(CloudError):
    """A material was stored under this path meanwhile (an upload that must not overwrite)."""


class CredentialsMissing(CloudError):
    """No AWS credentials are configured."""


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one workspace."""

    workspace_id: int
    client_token: str
    image: str
    instance_type: str
    volume_gb: int
    hibernation: bool
    user_data: str
    security_group_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BlockDevice:
    """An EBS volume an instance's BlockDeviceMappings list."""

    volume_id: str
    delete_on_termination: bool


@dataclass(frozen=True)
class VolumeInfo:
    """One EBS volume attached to an instance: what it costs to keep (size, type, since when)."""

    volume_id: str
    instance_id: str
    size_gb: int
    volume_type: str  # gp3, gp2, io1, ...
    created_at: datetime | None  # AWS CreateTime: storage is billed from here
    delete_on_termination: bool  # goes with the instance when it is terminated


@dataclass(frozen=True)
class InstanceInfo:
    """What the cloud says about one instance."""

    instance_id: str
    state: str  # AWS state name: pending, running, stopping, stopped, shutting-down, terminated
    tags: dict[str, str]
    availability_zone: str = ""
    public_ip: str = ""
    state_reason: str = ""
    instance_type: str = ""
    launched_at: datetime | None = None  # AWS LaunchTime: when this run of the instance began (tz-aware)
    block_devices: tuple[BlockDevice, ...] = ()  # its EBS volumes, from BlockDeviceMappings

    @property
    def workspace_id(self) -> int | None:
        raw = self.tags.get("cwc:workspace-id", "")
        return int(raw) if raw.isdigit() else None


@dataclass(frozen=True)
class CourseStorage:
    """The course's shared materials file system and its two access points."""

    file_system_id: str
    student_access_point_id: str
    staff_access_point_id: str


class CloudBackend(Protocol):
    """Operations on the cloud; AwsBackend is the production adapter (moto-backed in development)."""

    region: str
    agent_archives: bool  # True: a retiring home is archived by its own agent (real EC2), not by the tool

    def ensure_course_network(self, course_key: str, allowed_ssh_cidrs: tuple[str, ...]) -> str: ...

    def ensure_course_storage(self, course_key: str, security_group_id: str) -> CourseStorage: ...

    def launch(self, spec: LaunchSpec) -> InstanceInfo: ...

    def stop(self, instance_ids: list[str], *, hibernate: bool, force: bool = False) -> bool: ...

    def start(self, instance_ids: list[str]) -> None: ...

    def terminate(self, instance_ids: list[str]) -> None: ...

    def describe_managed(self, states: tuple[str, ...] = ()) -> list[InstanceInfo]: ...

    def describe(self, instance_ids: list[str]) -> list[InstanceInfo]: ...

    def attached_volumes(self, instances: Sequence[InstanceInfo]) -> dict[str, list[VolumeInfo]]: ...

    def upload_material(self, course_key: str, path: str, body: bytes, *, overwrite: bool = True) -> str: ...

    def list_materials(self, course_key: str) -> list[tuple[str, int]]: ...

    def material_uploads(self) -> MaterialUploads: ...

    def download_material(self, course_key: str, path: str, dest: Path) -> None: ...

    def user_data(self, instance_id: str) -> str: ...

    def tag_instance(self, instance_id: str, tags: dict[str, str]) -> None: ...

    def tag_instances(self, instance_ids: list[str], tags: dict[str, str]) -> None: ...

    def untag_instance(self, instance_id: str, keys: list[str]) -> None: ...

    def archive_home(self, home: HomeArchive) -> ArchiveResult: ...

    def archive_upload_url(self, key: str, expires_s: int) -> str: ...

    def verify_archive(self, key: str, sha256: str, size: int) -> bool: ...

    def fetch_archive(self, key: str, dest: Path, sha256: str) -> int: ...

    def copy_materials(self, from_course_key: str, to_course_key: str) -> int: ...

    def ensure_archive_retention(self, course_key: str, days: int) -> None: ...

    def put_private_object(self, key: str, body: bytes, *, content_type: str, course_key: str) -> ArchiveResult: ...

    def get_private_object(self, key: str) -> bytes: ...

    def archive_download_url(self, key: str, expires_s: int) -> str: ...

    def delete_archive(self, key: str) -> None: ...

    def delete_leftover_storage(self, workspace_id: int) -> int: ...

    def course_stored(self, course_key: str, file_system_id: str) -> list[StoredItem]: ...

    def network_out(self, instance_id: str, start: datetime, end: datetime) -> int: ...

    def report_network_out(self, instance_id: str, at: datetime, sent_bytes: int) -> None: ...
