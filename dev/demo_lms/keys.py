"""The Demo LMS's own RSA key: made on first use, published as JWKS, used to sign id_tokens."""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from sqlalchemy import select
from sqlalchemy.orm import Session

from dev.demo_lms.models import DemoKey


def generate_key() -> DemoKey:
    """Return a new (unsaved) 2048-bit RSA key with its public JWK."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = "demo-" + uuid.uuid4().hex[:16]
    public: dict[str, Any] = json.loads(JWK.from_pyca(private.public_key()).export_public())  # not the PEM again
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return DemoKey(kid=kid, private_pem=pem, public_jwk=public)


def signing_key(session: Session) -> DemoKey:
    """Return the newest key, creating the first one if there is none (flushes, caller commits)."""
    key = session.scalar(select(DemoKey).order_by(DemoKey.id.desc()).limit(1))
    if key is None:
        key = generate_key()
        session.add(key)
        session.flush()
    return key


def public_jwks(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every key's public half, as a JWK Set."""
    return {"keys": [k.public_jwk for k in session.scalars(select(DemoKey).order_by(DemoKey.id))]}


def sign(session: Session, claims: dict[str, Any]) -> str:
    """Sign claims with the platform key (RS256, kid in the header)."""
    key = signing_key(session)
    return jwt.encode(claims, _parsed(key.private_pem), algorithm="RS256", headers={"kid": key.kid})


@functools.lru_cache(maxsize=8)
def _parsed(private_pem: str) -> rsa.RSAPrivateKey:
    """The key from its PEM, parsed once per process: a parse runs RSA's consistency check (about 30 ms of CPU),
    and PyJWT parsed the PEM again for every id_token the Demo LMS signed."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the Demo LMS signs with RSA keys only")
    return key
