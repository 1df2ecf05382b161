"""The Demo LMS blueprint: loopback-only guard, redirect to the demo host name, its own CSP and error pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from werkzeug.exceptions import HTTPException

from dev.demo_lms.origins import demo_host, demo_origin, origin_of, tool_origin
from dev.demo_lms.tools import latest_tool
from dev.guard import dev_request_allowed
from lti_app.runtime import db, settings
from lti_app.security import csp_nonce

F = TypeVar("F", bound=Callable[..., Any])
bp = Blueprint(
    "demo_lms",
    __name__,
    url_prefix="/demo-lms",
    static_folder="static",
    static_url_path="/static",
    template_folder="templates",
)


def page(view: F) -> F:
    """Mark a view as a browser page: used on the tool's host name, it redirects to the demo host name."""
    view.demo_page = True  # type: ignore[attr-defined]
    return view


@bp.before_request
def _guard() -> Response | None:
    cfg = settings()
    if not cfg.demo_lms or not dev_request_allowed():
        abort(404)
    view = current_app.view_functions.get(request.endpoint or "")
    if request.host != demo_host(cfg) and request.method in ("GET", "HEAD") and getattr(view, "demo_page", False):
        query = request.query_string.decode()
        return redirect(demo_origin(cfg) + request.path + ("?" + query if query else ""), code=302)  # type: ignore[return-value]
    return None


def tool_origins() -> list[str]:
    """Origins the course page frames and talks to: the tool's base URL and its registered login host."""
    origins = {tool_origin(settings())}
    tool = latest_tool(db())
    if tool is not None:
        origins.add(origin_of(tool.initiate_login_uri))
    return sorted(origins)


@bp.after_request
def _csp(response: Response) -> Response:
    if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
        tools = " ".join(tool_origins())
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            # frame-src needs 'self' too: the tool's frame comes back here for /auth and /deep-link-return.
            f"script-src 'self' 'nonce-{csp_nonce()}'; frame-src 'self' {tools}; frame-ancestors 'self'; "
            f"form-action 'self' {tools}; object-src 'none'; base-uri 'none'"
        )
    return response


def wants_json() -> bool:
    """API callers (services, registration) get JSON errors; people get a page."""
    return (
        request.path.startswith(("/demo-lms/api/", "/demo-lms/token", "/demo-lms/register"))
        or request.accept_mimetypes.best == "application/json"
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
    status = exc.code or 500
    if not settings().demo_lms or not dev_request_allowed():
        return Response("Not Found", 404, mimetype="text/plain"), 404  # say nothing about the Demo LMS
    if wants_json():
        return jsonify(error=exc.name.lower().replace(" ", "_"), error_description=exc.description), status
    return render_template("demo_lms/error.html", title=exc.name, message=exc.description, status=status), status
