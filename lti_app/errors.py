"""One place that turns errors into readable 4xx pages (or JSON for API calls); never a raw 500 for bad input."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from classroom.claims import ClaimError
from classroom.services.launches import LaunchRefused
from classroom.services.platforms import PlatformError
from classroom.services.registration import InviteError
from lti_app.lti.registration import RegistrationFailed

log = logging.getLogger(__name__)


class ToolError(Exception):
    """An error with an HTTP status and a message meant for the person who sees it."""

    status = 400
    title = "Something is not right"

    def __init__(self, message: str, *, status: int | None = None, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title


class LaunchRejected(ToolError):
    """An LTI login or launch failed validation."""

    status = 401
    title = "This launch could not be verified"


class Forbidden(ToolError):
    status = 403
    title = "Not allowed"


def _render(status: int, title: str, message: str) -> tuple[Response | str, int]:
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(error=title, message=message), status
    return render_template("error.html", title=title, message=message, status=status), status


def init_app(app: Flask) -> None:
    """Register handlers for tool, claim, refusal and HTTP errors."""

    @app.errorhandler(ToolError)
    def _tool_error(exc: ToolError):  # type: ignore[no-untyped-def]
        log.info("request refused: %s (%s)", exc.message, exc.status)
        return _render(exc.status, exc.title, exc.message)

    @app.errorhandler(ClaimError)
    def _claim_error(exc: ClaimError):  # type: ignore[no-untyped-def]
        return _render(400, "This launch is missing information", str(exc))

    @app.errorhandler(LaunchRefused)
    def _refused(exc: LaunchRefused):  # type: ignore[no-untyped-def]
        return _render(403, "No access", str(exc))

    @app.errorhandler(InviteError)
    def _invite(exc: InviteError):  # type: ignore[no-untyped-def]
        return _render(403, "Registration link not valid", str(exc))

    @app.errorhandler(RegistrationFailed)
    def _registration(exc: RegistrationFailed):  # type: ignore[no-untyped-def]
        log.info("dynamic registration failed: %s", exc)
        return _render(400, "Registration failed", str(exc))

    @app.errorhandler(PlatformError)
    def _platform(exc: PlatformError):  # type: ignore[no-untyped-def]
        return _render(400, "Registration refused", str(exc))

    @app.errorhandler(DataError)
    def _data(exc: DataError):  # type: ignore[no-untyped-def]
        # Safety net behind lti_app.inputs: a value the database cannot hold (too long, out of range) that a
        # route's own checks missed. Nothing was committed; the warning says which route needs a check.
        from lti_app.runtime import db

        db().rollback()
        log.warning("input reached the database unchecked on %s: %s", request.endpoint, type(exc.orig).__name__)
        return _render(
            422, "A value is too long or out of range", "Nothing was saved. Shorten or correct what you entered."
        )

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
        limit = (app.config.get("MAX_CONTENT_LENGTH") or 0) // 1048576
        return _render(413, "Too large", f"A request may carry at most {limit} MB; nothing was saved.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        return _render(exc.code or 500, exc.name, exc.description or "")
