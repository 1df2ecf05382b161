"""Bring an archived home back (a restored student, classroom.services.restores): fetch it from S3 through the port,
check its SHA-256, and unpack it into a fresh home.

The archive is either the simulated account's (`home/<user>/...`) or an agent's (`<user>/...`): both are unpacked
with the home's own folder stripped, with tarfile's "data" filter (no absolute paths, no `..`, no links out of the
home, no devices, no set-id bits), so an archive cannot write outside the home it is restored into.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from provisioning.backend import CloudError

CHUNK = 1 << 20


def inner_name(name: str) -> str | None:
    """Pure: the member's path inside the home (None for the home's own folder or anything outside one)."""
    parts = PurePosixPath(name).parts
    if parts and parts[0] == "home":
        parts = parts[1:]
    return str(PurePosixPath(*parts[1:])) if len(parts) > 1 else None


class RestoreMixin:
    """AwsBackend's part of the port for restores (needs s3 and bucket)."""

    s3: Any
    bucket: str

    def fetch_archive(self, key: str, dest: Path, sha256: str) -> int:
        """Download an archive to `dest` and check its SHA-256 against the recorded one; returns its size."""
        digest, size = hashlib.sha256(), 0
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            with dest.open("wb") as out:
                for chunk in iter(lambda: body.read(CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except ClientError as exc:
            raise CloudError(f"S3 could not read the archive {key}: {exc}") from exc
        if digest.hexdigest() != sha256:
            dest.unlink(missing_ok=True)
            raise CloudError(f"The archive {key} does not match its recorded SHA-256; it was not restored.")
        return size


def unpack_home(archive: Path, home: Path) -> int:
    """Unpack an archive into `home` (created if missing), the home's own folder stripped; returns entries."""
    home.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(archive, mode="r:gz") as tar:
        for member in tar.getmembers():
            inner = inner_name(member.name)
            if inner is None:
                continue
            member.name = inner
            try:
                tar.extract(member, home, filter="data")  # refuses paths and links leaving `home`
            except (tarfile.FilterError, KeyError):  # a member that would leave the home: skipped, never written
                continue
            count += 1
    return count
