"""The evidence store's S3 adapter: snapshots in the tool's bucket, every S3 error as the port's CloudError."""

from __future__ import annotations

from typing import Any

from classroom.integrity.store import PREFIX, EvidenceStore, snapshot_key
from provisioning.aws_failures import AWS_FAILURES
from provisioning.backend import CloudError


class S3EvidenceStore:
    """Snapshots in the tool's bucket (the archive bucket), every S3 error as the port's CloudError."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def put(self, body: bytes) -> str:
        """Store a snapshot under its content address (idempotent); returns the key."""
        key = snapshot_key(body)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/gzip",
                ServerSideEncryption="AES256",
                Metadata={"sha256": key[len(PREFIX) :].split(".")[0]},
            )
        except AWS_FAILURES as exc:
            raise CloudError(f"S3 refused the snapshot {key}: {exc}") from exc
        return key

    def get(self, key: str) -> bytes:
        """A snapshot's bytes, checked against its content address."""
        try:
            body = bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except AWS_FAILURES as exc:
            raise CloudError(f"S3 could not read the snapshot {key}: {exc}") from exc
        if snapshot_key(body) != key:
            raise CloudError(f"the snapshot {key} does not match its content address")
        return body

    def delete(self, key: str) -> None:
        """Remove a snapshot (retention purge)."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except AWS_FAILURES as exc:
            raise CloudError(f"S3 could not delete the snapshot {key}: {exc}") from exc


def store_for(backend: Any) -> EvidenceStore:
    """The store of the cloud backend in use (its S3 client and bucket)."""
    return S3EvidenceStore(backend.s3, backend.bucket)
