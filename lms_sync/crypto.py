"""Encryption at rest for OAuth tokens (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from config.settings import Settings


class TokenDecryptError(ValueError):
    """A stored token cannot be decrypted (the key changed): the instructor must connect again."""


def fernet_for(settings: Settings) -> Fernet:
    """CWC_TOKEN_ENCRYPTION_KEY when set, else a key derived from the secret key (HKDF-SHA256)."""
    if settings.token_encryption_key:
        return Fernet(settings.token_encryption_key.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cwc-oauth-token-encryption-v1").derive(
        settings.secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(settings: Settings, value: str) -> bytes:
    """Ciphertext for a token."""
    return fernet_for(settings).encrypt(value.encode())


def decrypt(settings: Settings, value: bytes) -> str:
    """The token back, or TokenDecryptError."""
    try:
        return fernet_for(settings).decrypt(bytes(value)).decode()
    except InvalidToken as exc:
        raise TokenDecryptError("The stored Canvas authorisation cannot be read; connect Canvas again.") from exc
