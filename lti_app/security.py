"""Security headers on every response: no referrer, CSP whose frame-ancestors names the course's platform only."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

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
    _platform_cache.clear()


_platform_cache: dict[int, tuple[float, tuple[str, ...]]] = {}


def platform_frame_origins(platform_id: int) -> tuple[str, ...]:
    """One platform's frame origins, re-read at most every 30 s per worker process."""
    hit = _platform_cache.get(platform_id)
    if hit is not None and time.monotonic() - hit[0] <= _ORIGINS_TTL_S:
        return hit[1]
    origins = tuple(db().scalar(select(Platform.frame_origins).where(Platform.id == platform_id)) or ())
    _platform_cache[platform_id] = (time.monotonic(), origins)
    return origins


def frame_for_platform(platform_id: int) -> None:
    """This response belongs to one platform's course (or launch): only that platform may frame it."""
    g.frame_platform_id = platform_id


def allow_framing_by(url: str) -> None:
    """Let the origin of `url` frame this response too (registration pages, before the platform is stored)."""
    from urllib.parse import urlparse

    parts = urlparse(url)
    if parts.scheme in ("http", "https") and parts.netloc and all(c not in parts.netloc for c in " ;'\""):
        g.extra_frame_ancestors = (*g.get("extra_frame_ancestors", ()), f"{parts.scheme}://{parts.netloc}")


def registration_page(url: str) -> None:
    """A Dynamic Registration page: framed only by the registering LMS (`url`'s origin); its errors by no one."""
    g.registration_page = True
    allow_framing_by(url)


def frame_parent_origins() -> list[str]:
    """The exact origins of the platform that frames this course page (wildcards left out): where the page sends
    `lti.frameResize`. Empty outside a course's pages."""
    platform_id = g.get("frame_platform_id")
    return [o for o in platform_frame_origins(platform_id) if "*" not in o] if platform_id else []


def frame_ancestors(status: int = 200) -> str:
    """Who may frame this response.

    Registration pages: only the registering platform's origin, and their error pages nobody. A course's pages
    (and a launch once its platform is known): only that platform's origins. Anything else (a login or launch
    refused before its platform is known): the registered platforms' origins, so the LMS frame shows why.
    """
    if g.get("registration_page"):
        return "'none'" if status >= 400 else " ".join(["'self'", *sorted(set(g.get("extra_frame_ancestors", ())))])
    platform_id = g.get("frame_platform_id")
    origins = set(platform_frame_origins(platform_id)) if platform_id else set(registered_frame_origins())
    return " ".join(["'self'", *sorted(origins | set(g.get("extra_frame_ancestors", ())))])


def storage_origins() -> str:
    """Where the materials page PUTs upload parts (presigned S3 URLs): the simulated endpoint, or the bucket's hosts."""
    cfg = settings()
    if cfg.aws_endpoint_url:
        url = urlsplit(cfg.aws_endpoint_url)
        return f"{url.scheme}://{url.netloc}"
    bucket, region = cfg.aws_bucket, cfg.aws_region
    return f"https://{bucket}.s3.amazonaws.com https://{bucket}.s3.{region}.amazonaws.com https://s3.{region}.amazonaws.com"


def _terminal() -> str:
    """The terminal gateway's origin, when pages may open terminals (see lti_app/workspaces/terminal_views.py)."""
    from lti_app.workspaces.terminal_views import terminal_origin

    origin = terminal_origin()
    return f" {origin}" if origin else ""


def _set_headers(response: Response) -> Response:
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; connect-src 'self' {storage_origins()}{_terminal()}; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' 'nonce-{csp_nonce()}'{g.get('csp_script_extra', '')}; "  # a page may add one source
            "object-src 'none'; base-uri 'none'; "
            f"frame-ancestors {frame_ancestors(response.status_code)}"
        )
    if settings().secure_cookies:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Install the after-request hook and the csp_nonce template helper."""
    app.after_request(_set_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["frame_parent_origins"] = frame_parent_origins
    from classroom.budget.policy import money

    app.jinja_env.globals["money"] = money
