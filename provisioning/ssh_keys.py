"""Per-student SSH keys: generate (private key shown once), upload, revoke. A key belongs to one person."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import SshKey, SshKeyFingerprint


class SshKeyError(ValueError):
    """The key is malformed, too weak, or belongs to someone else."""


def fingerprint(public_key: str) -> str:
    """OpenSSH SHA256 fingerprint of a public key line."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def normalise_public_key(text: str) -> str:
    """Validate an OpenSSH public key line and return `type base64` (comment dropped)."""
    line = " ".join(text.strip().split())
    parts = line.split(" ")
    if len(parts) < 2:
        raise SshKeyError("Paste one public key line, such as `ssh-ed25519 AAAA… you@laptop` (the .pub file).")
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SshKeyError("That is not a valid SSH public key. Paste the content of your .pub file.") from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 3072:
        raise SshKeyError("RSA keys must be at least 3072 bits; an ed25519 key is better.")
    if not isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise SshKeyError("Use an ed25519, ECDSA or RSA (3072+ bits) key.")
    return f"{parts[0]} {parts[1]}"


def generate_key_pair(comment: str) -> tuple[str, str]:
    """A new ed25519 key pair: (private key in OpenSSH format, public key line). The private key is not stored."""
    private = ed25519.Ed25519PrivateKey.generate()
    private_text = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    )
    return private_text, f"{public} {comment}".strip()


TAKEN = "This key is registered to another person. Every student needs their own key."


def bind_fingerprint(session: Session, fp: str, person_id: int) -> int:
    """Bind `fp` to `person_id` unless already bound (for ever); return the person it is bound to."""
    session.execute(
        insert(SshKeyFingerprint)
        .values(fingerprint=fp, person_id=person_id, bound_at=utcnow())
        .on_conflict_do_nothing(index_elements=["fingerprint"])
    )
    owner = session.scalar(select(SshKeyFingerprint.person_id).where(SshKeyFingerprint.fingerprint == fp))
    assert owner is not None
    return owner


def add_key(session: Session, *, person_id: int, course_id: int, public_key: str, source: str) -> SshKey:
    """Store a public key for this person; refuse a key another person uses."""
    line = normalise_public_key(public_key)
    fp = fingerprint(line)
    if bind_fingerprint(session, fp, person_id) != person_id:
        raise SshKeyError(TAKEN)
    owner = session.scalar(select(SshKey).where(SshKey.fingerprint == fp, SshKey.revoked_at.is_(None)))
    if owner is not None:
        return owner
    key_id = session.scalar(
        insert(SshKey)
        .values(
            person_id=person_id,
            course_id=course_id,
            public_key=line,
            fingerprint=fp,
            source=source,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["fingerprint"], index_where=SshKey.revoked_at.is_(None))
        .returning(SshKey.id)
    )
    if key_id is None:  # the same person added it twice at once: the other request's row stands
        owner = session.scalar(select(SshKey).where(SshKey.fingerprint == fp, SshKey.revoked_at.is_(None)))
        assert owner is not None
        return owner
    append_event(
        session, "ssh_key.added", actor_person_id=person_id, course_id=course_id, subject=fp, details={"source": source}
    )
    key = session.get(SshKey, key_id)
    assert key is not None
    return key


def revoke_key(session: Session, *, person_id: int, key_id: int) -> SshKey:
    """Revoke one of the person's own keys; agents remove it from workspaces within a minute."""
    key = session.get(SshKey, key_id)
    if key is None or key.person_id != person_id:
        raise SshKeyError("No such key.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        append_event(
            session, "ssh_key.revoked", actor_person_id=person_id, course_id=key.course_id, subject=key.fingerprint
        )
        session.flush()
    return key


def active_keys(session: Session, person_id: int) -> list[SshKey]:
    """The person's keys that are not revoked."""
    return list(
        session.scalars(
            select(SshKey).where(SshKey.person_id == person_id, SshKey.revoked_at.is_(None)).order_by(SshKey.id)
        )
    )
