"""The evidence store port: deadline snapshots in the archive bucket (adapter: provisioning/aws_evidence.py).

Snapshots are content-addressed: the key is the SHA-256 of the tar.gz, so a stored snapshot cannot be replaced
by different content under the same name, and the same content uploaded twice is one object.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

PREFIX = "integrity/snapshots/sha256/"


class EvidenceStore(Protocol):
    """Where deadline snapshots live."""

    def put(self, body: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


def snapshot_key(body: bytes) -> str:
    """The content address of a snapshot."""
    return f"{PREFIX}{hashlib.sha256(body).hexdigest()}.tar.gz"
