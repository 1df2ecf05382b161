"""The one guard for development-only surfaces (/dev/mail, the Demo LMS, any later time-travel control).

A dev-only blueprint is registered only when `dev_surfaces_allowed(settings)` (so it is absent from the url_map
in production or on a public bind), and every request to it must also come from a loopback client.
"""

from __future__ import annotations

from flask import Blueprint, abort, request

from config.settings import Settings
from lti_app.runtime import settings


def is_loopback(addr: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1."""
    return bool(addr) and (addr.startswith("127.") or addr in ("::1", "::ffff:127.0.0.1"))  # type: ignore[union-attr]


def dev_surfaces_allowed(cfg: Settings) -> bool:
    """Development setting on (not production) and the server bound to loopback."""
    return not cfg.is_production and cfg.is_loopback_bind


def dev_request_allowed() -> bool:
    """This request may reach a dev-only surface: the setting, the bind and a loopback client."""
    return dev_surfaces_allowed(settings()) and is_loopback(request.remote_addr)


def guard_dev_only(bp: Blueprint) -> Blueprint:
    """Answer 404 (saying nothing) to every request to `bp` that `dev_request_allowed` refuses."""

    @bp.before_request
    def _dev_only() -> None:
        if not dev_request_allowed():
            abort(404)

    return bp
