"""Security headers on every response: no referrer, CSP whose frame-ancestors lists registered platforms."""

from __future__ import annotations

import secrets
import time

from flask import Flask, Response, g
from sqlalchemy import select

from classroom.models import Platform
from lti_app.runtime import db, settings


def csp_nonce() -> str:
    """A per-response nonce for the few inline scripts (platform storage, auto-submit forms)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce  # type: ignore[no-any-return]


_ORIGINS_TTL_S = 30.0
_origins_cache: tuple[float, frozenset[str]] = (0.0, frozenset())


def registered_frame_origins() -> frozenset[str]:
    """Every registered platform's frame origins, re-read at most every 30 s per worker process."""
    global _origins_cache
    read_at, origins = _origins_cache
    if time.monotonic() - read_at > _ORIGINS_TTL_S:
        rows = db().scalars(select(Platform.frame_origins)).all()
        origins = frozenset(o for row in rows for o in (row or []))
        _origins_cache = (time.monotonic(), origins)
    return origins


def forget_frame_origins() -> None:
    """Drop this process's cached origins (after a registration here, and in tests)."""
    global _origins_cache
    _origins_cache = (0.0, frozenset())


def frame_ancestors() -> str:
    """'self' plus every registered platform's frame origins."""
    origins = sorted(registered_frame_origins() | set(g.get("extra_frame_ancestors", ())))
    return " ".join(["'self'", *origins])


def allow_framing_by(url: str) -> None:
    """Let the origin of `url` frame this response too (registration pages, before the platform is stored)."""
    from urllib.parse import urlparse

    parts = urlparse(url)
    if parts.scheme in ("http", "https") and parts.netloc and all(c not in parts.netloc for c in " ;'\""):
        g.extra_frame_ancestors = (*g.get("extra_frame_ancestors", ()), f"{parts.scheme}://{parts.netloc}")


def _set_headers(response: Response) -> Response:
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' 'nonce-{csp_nonce()}'; object-src 'none'; base-uri 'none'; "
            f"frame-ancestors {frame_ancestors()}"
        )
    if settings().secure_cookies:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Install the after-request hook and the csp_nonce template helper."""
    app.after_request(_set_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    from classroom.budget.policy import money

    app.jinja_env.globals["money"] = money
