"""The one guard for development-only surfaces (/dev/mail, the Demo LMS, any later time-travel control).

The app factory imports `dev.web` (and so this package) only when `Settings.dev_tools_allowed` (not production,
loopback bind): otherwise no dev blueprint is in the url_map and no `dev` module is loaded. Every request to a
dev-only blueprint must also come from a loopback client.
"""

from __future__ import annotations

from flask import Blueprint, abort, request

from lti_app.runtime import settings


def is_loopback(addr: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1."""
    return bool(addr) and (addr.startswith("127.") or addr in ("::1", "::ffff:127.0.0.1"))  # type: ignore[union-attr]


def dev_request_allowed() -> bool:
    """This request may reach a dev-only surface: the setting, the bind and a loopback client."""
    return settings().dev_tools_allowed and is_loopback(request.remote_addr)


def guard_dev_only(bp: Blueprint) -> Blueprint:
    """Answer 404 (saying nothing) to every request to `bp` that `dev_request_allowed` refuses."""

    @bp.before_request
    def _dev_only() -> None:
        if not dev_request_allowed():
            abort(404)

    return bp
