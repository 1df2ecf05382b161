"""Pinning a workspace instance's SSH host keys: the agent's first report wins. Pure: no I/O.

The tool reaches an EC2 workspace over SSH (files, export, backup, the browser terminal) and must know the
instance's host keys before its first connection. The agent reads them from /etc/ssh/ssh_host_*_key.pub and sends
them with its heartbeat (authenticated by the workspace's own token). The first report for an instance is pinned;
a later report that differs is refused (the pin stays) and flagged for staff: trust on first use, never a silent
replacement. A pin belongs to one instance: when the workspace moves to another (a reset, a new launch) or ends,
the old pin no longer counts and the new instance's first report is pinned.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from dataclasses import dataclass

MAX_KEYS = 8  # an instance has three or four (rsa, ecdsa, ed25519, maybe dsa)
MAX_KEY_CHARS = 4096  # an RSA 16384-bit key is about 2,800 characters of base64
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


class HostKeyAction(enum.StrEnum):
    """What to do with a report."""

    NOTHING = "nothing"  # no keys reported, or no instance to pin them for
    PIN = "pin"  # first report for this instance: store it
    SAME = "same"  # the pinned keys again
    REFUSE = "refuse"  # different from the pin: keep the pin, flag the report


@dataclass(frozen=True)
class HostKeyDecision:
    """The action and the keys it concerns (the reported ones, normalised)."""

    action: HostKeyAction
    keys: tuple[str, ...] = ()


def normalise_host_key(line: str) -> str:
    """ "type base64" of one OpenSSH public key line (comment dropped); ValueError when it is not one."""
    parts = line.strip().split()
    if len(parts) < 2 or len(line) > MAX_KEY_CHARS or parts[0] not in KEY_TYPES:
        raise ValueError("not an OpenSSH host public key line (ed25519, ecdsa or rsa)")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise ValueError("the host key is not base64") from exc
    name_len = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + name_len] != parts[0].encode():  # the blob starts with its own type name
        raise ValueError("the host key's type does not match its data")
    return f"{parts[0]} {parts[1]}"


def parse_host_keys(lines: list[str]) -> tuple[str, ...]:
    """The reported keys, normalised, without duplicates, in a stable order; ValueError for any bad one."""
    if len(lines) > MAX_KEYS:
        raise ValueError(f"at most {MAX_KEYS} host keys")
    return tuple(sorted({normalise_host_key(line) for line in lines}))


def pinned_keys(stored: str) -> tuple[str, ...]:
    """The keys stored on the workspace row (one per line)."""
    return tuple(line for line in stored.splitlines() if line.strip())


def decide_pin(current: tuple[str, ...], reported: tuple[str, ...]) -> HostKeyDecision:
    """Against the pin that counts for the reporting instance (() when none yet): the first report pins, the same
    keys again change nothing, other keys are refused."""
    if not reported:
        return HostKeyDecision(HostKeyAction.NOTHING)
    if not current:
        return HostKeyDecision(HostKeyAction.PIN, reported)
    if set(reported) == set(current):
        return HostKeyDecision(HostKeyAction.SAME, reported)
    return HostKeyDecision(HostKeyAction.REFUSE, reported)


def decide_host_keys(
    pinned: tuple[str, ...], pinned_for: str | None, instance_id: str | None, reported: tuple[str, ...]
) -> HostKeyDecision:
    """`decide_pin` for a workspace row, whose pin counts only for the instance it was reported for (nothing is
    pinned while the workspace has no instance)."""
    if not instance_id:
        return HostKeyDecision(HostKeyAction.NOTHING)
    return decide_pin(pinned if pinned_for == instance_id else (), reported)


def current_pin(pinned: str, pinned_for: str | None, instance_id: str | None) -> tuple[str, ...]:
    """The keys pinned for the workspace's current instance, or () (none yet, or pinned for another instance)."""
    return pinned_keys(pinned) if instance_id and pinned_for == instance_id else ()


def key_fingerprint(line: str) -> str:
    """OpenSSH's "SHA256:..." fingerprint of a stored key line, with its type ("ssh-ed25519 SHA256:...")."""
    kind, data = line.split()[:2]
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(data)).digest()).decode().rstrip("=")
    return f"{kind} SHA256:{digest}"
