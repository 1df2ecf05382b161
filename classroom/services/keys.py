"""The tool's signing keys: create, rotate, publish (JWKS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import KeyStatus, ToolKey


@dataclass(frozen=True)
class SigningKey:
    """What a signer needs: the key id and the private key in PEM."""

    kid: str
    private_pem: str


def _new_key(status: KeyStatus, key_size: int = 2048) -> ToolKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = JWK.from_pyca(private)  # the key object itself: parsing its PEM again costs 50-100 ms of CPU
    kid = jwk.thumbprint()
    public = json.loads(jwk.export_public())
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    now = utcnow()
    return ToolKey(
        kid=kid,
        private_pem=pem,
        public_jwk=public,
        status=status,
        activated_at=now if status is KeyStatus.CURRENT else None,
    )


def ensure_keys(session: Session) -> None:
    """Create the current and next keys if missing (first start); safe when several workers race."""
    have = set(session.scalars(select(ToolKey.status).where(ToolKey.status != KeyStatus.RETIRED)))
    for status in (KeyStatus.CURRENT, KeyStatus.NEXT):
        if status in have:
            continue
        key = _new_key(status)
        session.execute(
            insert(ToolKey)
            .values(
                kid=key.kid,
                private_pem=key.private_pem,
                public_jwk=key.public_jwk,
                status=status,
                created_at=utcnow(),
                activated_at=key.activated_at,
            )
            .on_conflict_do_nothing(index_elements=["status"], index_where=text(f"status = '{status.value}'"))
        )
    session.flush()


def current_signing_key(session: Session) -> SigningKey:
    """Return the key used to sign service assertions and deep-linking responses."""
    key = session.scalar(select(ToolKey).where(ToolKey.status == KeyStatus.CURRENT))
    if key is None:
        ensure_keys(session)
        key = session.scalar(select(ToolKey).where(ToolKey.status == KeyStatus.CURRENT))
    assert key is not None
    return SigningKey(key.kid, key.private_pem)


def rotate_keys(session: Session, *, now: datetime | None = None) -> tuple[str, str]:
    """Retire the current key, promote the next one, create a new next. Returns (old kid, new kid)."""
    now = now or utcnow()
    ensure_keys(session)
    current = session.scalar(select(ToolKey).where(ToolKey.status == KeyStatus.CURRENT).with_for_update())
    nxt = session.scalar(select(ToolKey).where(ToolKey.status == KeyStatus.NEXT).with_for_update())
    assert current is not None and nxt is not None
    current.status, current.retired_at = KeyStatus.RETIRED, now
    session.flush()
    nxt.status, nxt.activated_at = KeyStatus.CURRENT, now
    session.flush()
    session.add(_new_key(KeyStatus.NEXT))
    append_event(session, "keys.rotated", subject=nxt.kid, details={"retired": current.kid, "current": nxt.kid})
    return current.kid, nxt.kid


def published_jwks(
    session: Session, *, grace: timedelta, now: datetime | None = None
) -> dict[str, list[dict[str, str]]]:
    """Public keys platforms may see: current, next, and retired ones still within their grace period."""
    now = now or utcnow()
    keys = session.scalars(select(ToolKey).order_by(ToolKey.id)).all()
    published = [
        k.public_jwk
        for k in keys
        if k.status is not KeyStatus.RETIRED or (k.retired_at is not None and k.retired_at > now - grace)
    ]
    return {"keys": published}
