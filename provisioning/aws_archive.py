"""Disks that end, on AWS: archive a stopped workspace's home to S3, the bucket's retention rule, leftover storage.

The archive is defined at the port (`archive_home`): a gzip'd tar of the student's home, stored under the
course's archive prefix with its SHA-256, expired by the bucket's lifecycle rule for that prefix. On real EC2
the home's bytes are on an EBS volume the tool cannot read: the workspace's agent makes the archive
(provisioning.agent_archive: `archive_upload_url`, `verify_archive`), and `archive_home` refuses. In the
simulated account (moto), by default, the archive holds the real home when the local runtime keeps one on this
machine (`HomeArchive.local_home`: every file, folder and link, `.ssh` left out as the agent's restore leaves it
out); without a runtime (bare moto) it holds what the simulated instance holds: the home's folder layout (the
assignment folders its agent creates) and a manifest of the instance and its volumes, no contents.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import ClientError

from provisioning.backend import MANAGED_BY, CloudError

RULE_PREFIX = "cwc-archives-"
NO_LIFECYCLE = ("NoSuchLifecycleConfiguration",)
ARCHIVE_TYPE = "application/gzip"  # signed into the agent's upload URL: the agent sends exactly this
ARCHIVE_MAX = 5 * 1024**3  # one S3 PUT at most (the agent's limit too)
SKIPPED = (".ssh",)  # the student's keys come from the tool (the agent's restore leaves .ssh out too)


@dataclass(frozen=True)
class HomeArchive:
    """What the archive step needs to know about a workspace (no secrets: never the agent's token)."""

    workspace_id: int
    instance_id: str
    course_key: str
    os_user: str
    folders: tuple[str, ...] = ()
    local_home: Path | None = None  # the local runtime's home of this instance, when this machine holds it


@dataclass(frozen=True)
class ArchiveResult:
    """Where the archive is, its SHA-256 (hex) and its size."""

    key: str
    sha256: str
    size: int


def archive_prefix(course_key: str) -> str:
    """The S3 prefix of a course's archives (the lifecycle rule's filter)."""
    return f"courses/{course_key}/archives/"


def archive_object_key(course_key: str, workspace_id: int) -> str:
    """courses/<course>/archives/ws<id>/home.tar.gz: one per workspace, so a retried archive overwrites itself."""
    return f"{archive_prefix(course_key)}ws{workspace_id}/home.tar.gz"


def _tar_gz(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A deterministic tar.gz (fixed times and owners): the same content gives the same SHA-256 on a retry."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid = 0, 1000, 1000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def tar_gz_home(home: Path, root: str, out: IO[bytes]) -> None:
    """A real home as a deterministic tar.gz under `root` (sorted, fixed owners, the files' own times: an unchanged
    home gives the same SHA-256 on a retry); folders, files and links (stored as links, never followed), no .ssh."""
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_info(root, home.lstat()))
        for folder, dirs, files in os.walk(home, followlinks=False):
            rel = Path(folder).relative_to(home)
            dirs[:] = sorted(d for d in dirs if not (rel == Path() and d in SKIPPED))
            for name in sorted([*dirs, *files]):
                path, member = Path(folder) / name, f"{root}/{(rel / name).as_posix()}"
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    tar.addfile(_info(member, st, os.readlink(path)))
                elif stat.S_ISDIR(st.st_mode):
                    tar.addfile(_info(member, st))
                elif stat.S_ISREG(st.st_mode) and not (rel == Path() and name in SKIPPED):
                    with path.open("rb") as fh:
                        tar.addfile(_info(member, st), fh)  # sockets, fifos, devices: not kept


def _info(name: str, st: os.stat_result, link: str | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.mode = int(st.st_mtime), 1000, 1000, stat.S_IMODE(st.st_mode)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    else:
        info.size = st.st_size
    return info


class ArchiveMixin:
    """AwsBackend's part of the port for archives, retention and leftover storage (needs ec2, s3, bucket)."""

    ec2: Any
    s3: Any
    bucket: str
    simulated: bool
    agent_archives: bool  # the agent makes the archive (always on real EC2; in the simulated account when asked)

    def archive_home(self, home: HomeArchive) -> ArchiveResult:
        """Archive a stopped workspace's home to S3 (tar.gz, SHA-256 recorded on the object); idempotent."""
        if not self.simulated:
            raise CloudError(
                "Archiving a home from a real EC2 volume needs the workspace agent's archive step, which this "
                "version does not have; the disk is kept."
            )
        with tempfile.TemporaryFile() as body:
            try:
                if home.local_home is not None:  # the local runtime's real home
                    tar_gz_home(home.local_home, f"home/{home.os_user}", body)
                else:
                    body.write(_tar_gz(self._simulated_home(home)))
            except OSError as exc:
                raise CloudError(f"The home of workspace {home.workspace_id} could not be read: {exc}") from exc
            size, digest = body.tell(), hashlib.sha256()
            if size > ARCHIVE_MAX:
                raise CloudError(f"The home of workspace {home.workspace_id} is over 5 GB: the disk is kept.")
            body.seek(0)
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
            body.seek(0)
            return self._put_archive(home, body, digest.hexdigest(), size)

    def _put_archive(self, home: HomeArchive, body: IO[bytes], digest: str, size: int) -> ArchiveResult:
        key = archive_object_key(home.course_key, home.workspace_id)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ContentType="application/gzip",
                ServerSideEncryption="AES256",
                Metadata={"sha256": digest, "workspace-id": str(home.workspace_id)},
                Tagging=f"cwc:managed-by={MANAGED_BY}&cwc:course={home.course_key}",
            )
        except ClientError as exc:
            raise CloudError(f"S3 refused the archive of workspace {home.workspace_id}: {exc}") from exc
        return ArchiveResult(key, digest, size)

    def archive_upload_url(self, key: str, expires_s: int) -> str:
        """A presigned S3 PUT for the agent's tar.gz (computed locally: no call to AWS, no secret in the URL)."""
        return str(
            self.s3.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": ARCHIVE_TYPE},
                ExpiresIn=expires_s,
                HttpMethod="PUT",
            )
        )

    def verify_archive(self, key: str, sha256: str, size: int) -> bool:
        """True when the object the agent uploaded has the size and SHA-256 it reported (the object is re-read
        and hashed, in the simulated account and on real S3 alike); False when it is missing or differs."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise CloudError(f"S3 could not read the archive {key}: {exc}") from exc
        if int(head.get("ContentLength", -1)) != size:
            return False
        digest = hashlib.sha256()
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
        except ClientError as exc:
            raise CloudError(f"S3 could not read the archive {key}: {exc}") from exc
        return digest.hexdigest() == sha256

    def _simulated_home(self, home: HomeArchive) -> list[tuple[str, bytes | None]]:
        try:
            found = self.ec2.describe_instances(InstanceIds=[home.instance_id])["Reservations"]
        except ClientError as exc:
            raise CloudError(f"AWS could not describe instance {home.instance_id}: {exc}") from exc
        inst = next((i for r in found for i in r["Instances"]), {})
        volumes = [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m]
        manifest = {
            "workspace_id": home.workspace_id,
            "instance_id": home.instance_id,
            "instance_type": inst.get("InstanceType", ""),
            "volumes": volumes,
            "simulated": True,
            "note": "Simulated AWS: the folder layout of the home, no file contents.",
        }
        root = f"home/{home.os_user}"
        entries: list[tuple[str, bytes | None]] = [(root, None)]
        for folder in sorted(set(home.folders)):
            parts = folder.split("/")
            entries += [(f"{root}/{'/'.join(parts[: i + 1])}", None) for i in range(len(parts))]
        entries = list(dict.fromkeys(entries))
        entries.append((f"{root}/.cwc-archive.json", json.dumps(manifest, indent=2, sort_keys=True).encode()))
        return entries

    def ensure_archive_retention(self, course_key: str, days: int) -> None:
        """The bucket's lifecycle rule for the course's archives: expire them `days` after they are written."""
        rule_id = RULE_PREFIX + course_key
        try:
            rules = self.s3.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in NO_LIFECYCLE:
                raise CloudError(f"S3 could not read the bucket's lifecycle rules: {exc}") from exc
            rules = []
        mine = {
            "ID": rule_id,
            "Filter": {"Prefix": archive_prefix(course_key)},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        if any(r.get("ID") == rule_id and r.get("Expiration", {}).get("Days") == days for r in rules):
            return
        others = [r for r in rules if r.get("ID") != rule_id]
        try:
            self.s3.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [*others, mine]}
            )
        except ClientError as exc:
            raise CloudError(f"S3 refused the archives' lifecycle rule: {exc}") from exc

    def archive_download_url(self, key: str, expires_s: int) -> str:
        """A presigned S3 GET of an archive, for staff (computed locally: no call to AWS)."""
        return str(
            self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s, HttpMethod="GET"
            )
        )

    def delete_archive(self, key: str) -> None:
        """Delete an expired archive (idempotent: an object already gone, e.g. expired by the rule, is fine)."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise CloudError(f"S3 refused to delete the archive {key}: {exc}") from exc

    def delete_leftover_storage(self, workspace_id: int) -> int:
        """Delete the workspace's detached volumes and any snapshots (tagged with its id); returns how many."""
        tag = [{"Name": "tag:cwc:workspace-id", "Values": [str(workspace_id)]}]
        deleted = 0
        try:
            for vol in self.ec2.describe_volumes(Filters=tag)["Volumes"]:
                if vol["State"] == "available":
                    self.ec2.delete_volume(VolumeId=vol["VolumeId"])
                    deleted += 1
            for snap in self.ec2.describe_snapshots(OwnerIds=["self"], Filters=tag)["Snapshots"]:
                self.ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])
                deleted += 1
        except ClientError as exc:
            raise CloudError(f"AWS could not delete the storage of workspace {workspace_id}: {exc}") from exc
        return deleted
