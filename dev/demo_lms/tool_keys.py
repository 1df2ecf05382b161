"""Verify JWTs the tool signs (client assertions, deep-linking responses) against its JWKS, fetched over HTTP."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests
from flask import current_app
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dev.demo_lms.models import DemoSeenJti, DemoTool

CACHE_TTL_S = 300
LEEWAY_S = 60
_lock = threading.Lock()


class ToolTokenInvalid(ValueError):
    """The tool's JWT is unsigned, badly signed, expired, for someone else, or replayed."""


def _cache() -> dict[str, tuple[float, dict[str, Any]]]:
    return current_app.extensions.setdefault("demo_lms_tool_jwks", {})  # type: ignore[no-any-return]


def _fetch(url: str) -> dict[str, Any]:
    try:
        resp = requests.get(url, timeout=10, headers={"Accept": "application/json"})
        resp.raise_for_status()
        keys = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise ToolTokenInvalid(f"Could not fetch the tool's keys from {url}.") from exc
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise ToolTokenInvalid(f"The tool's key set at {url} is not a JWK Set.")
    return {str(k.get("kid")): k for k in keys["keys"] if isinstance(k, dict)}


def tool_key(url: str, kid: str) -> jwt.PyJWK:
    """The tool's public key with this kid; the cached set is refetched once when the kid is unknown."""
    with _lock:
        cached = _cache().get(url)
        fresh = cached is None or time.monotonic() - cached[0] > CACHE_TTL_S
        if fresh or kid not in cached[1]:  # type: ignore[index]
            _cache()[url] = (time.monotonic(), _fetch(url))
        keys = _cache()[url][1]
    if kid not in keys:
        raise ToolTokenInvalid("The tool's JWT names a key (kid) its key set does not have.")
    try:
        return jwt.PyJWK(keys[kid], algorithm="RS256")
    except jwt.PyJWTError as exc:
        raise ToolTokenInvalid("The tool's published key cannot be used for RS256.") from exc


def verify_tool_jwt(tool: DemoTool, token: str, audience: str, *, require: tuple[str, ...]) -> dict[str, Any]:
    """Check signature (RS256 only), iss = client_id, aud, exp/iat (60 s leeway); return the claims."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise ToolTokenInvalid("The JWT cannot be read.") from exc
    if header.get("alg") != "RS256" or not header.get("kid"):
        raise ToolTokenInvalid("The JWT must be RS256 with a kid.")
    key = tool_key(tool.jwks_uri, str(header["kid"]))
    try:
        return jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=audience,
            issuer=tool.client_id,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "iss", "aud", *require]},
        )
    except jwt.PyJWTError as exc:
        raise ToolTokenInvalid(f"The JWT is not valid: {exc}.") from exc


def unverified_issuer(token: str) -> str:
    """The iss of a JWT before verification (to find which tool's keys to use)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ToolTokenInvalid("The JWT cannot be read.") from exc
    return str(claims.get("iss", ""))


def remember_once(session: Session, client_id: str, value: str, exp: Any) -> None:
    """Record a jti or nonce; raise ToolTokenInvalid if it was seen before (flushes, caller commits)."""
    if not value or len(value) > 255:
        raise ToolTokenInvalid("The JWT needs a unique jti/nonce (at most 255 characters).")
    expires = datetime.fromtimestamp(int(exp), UTC) + timedelta(seconds=LEEWAY_S)
    new_id = session.scalar(
        insert(DemoSeenJti)
        .values(client_id=client_id, jti=value, expires_at=expires)
        .on_conflict_do_nothing(constraint="uq_demo_seen_jtis_client_jti")
        .returning(DemoSeenJti.id)
    )
    if new_id is None:
        raise ToolTokenInvalid("This JWT was used already (replayed jti/nonce).")
