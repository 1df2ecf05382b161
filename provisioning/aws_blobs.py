"""Private objects in the course's archive bucket: debug-session recordings and reset backups (tar.gz).

Every object is written with its SHA-256 in its metadata, encrypted at rest and tagged as managed; `get` reads it
back whole (recordings and backups are bounded: a home is refused above MAX_BLOB_BYTES). Every AWS failure
(provisioning.aws_failures) becomes CloudError, so a failing S3 never escapes the port.
"""

from __future__ import annotations

import hashlib
from typing import Any

from provisioning.aws_archive import ArchiveResult
from provisioning.aws_failures import AWS_FAILURES
from provisioning.backend import MANAGED_BY, CloudError

MAX_BLOB_BYTES = 2 * 1024**3


class BlobMixin:
    """AwsBackend's part of the port for private objects (needs s3 and bucket)."""

    s3: Any
    bucket: str

    def put_private_object(self, key: str, body: bytes, *, content_type: str, course_key: str) -> ArchiveResult:
        """Store `body` under `key` with its SHA-256; returns where, the digest and the size."""
        if len(body) > MAX_BLOB_BYTES:
            raise CloudError(f"{key} is {len(body)} bytes, above the {MAX_BLOB_BYTES}-byte limit for one object")
        digest = hashlib.sha256(body).hexdigest()
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, ServerSideEncryption="AES256",
                Metadata={"sha256": digest}, Tagging=f"cwc:managed-by={MANAGED_BY}&cwc:course={course_key}",
            )  # fmt: skip
        except AWS_FAILURES as exc:
            raise CloudError(f"S3 refused {key}: {exc}") from exc
        return ArchiveResult(key, digest, len(body))

    def get_private_object(self, key: str) -> bytes:
        """The object's bytes (CloudError when it is missing or S3 cannot answer)."""
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except AWS_FAILURES as exc:
            raise CloudError(f"S3 could not read {key}: {exc}") from exc
