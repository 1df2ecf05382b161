"""Dynamic Registration, platform side: OpenID configuration, the registration endpoint, the admin page."""

from __future__ import annotations

import os
from typing import Any

from flask import Response, jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from config.settings import Settings
from dev.demo_lms.blueprint import bp, page, tool_origins
from dev.demo_lms.bootstrap import REGISTRATION_URL_ENV, registration_launch_url
from dev.demo_lms.messages import MESSAGE_TYPES
from dev.demo_lms.origins import demo_url, issuer, openid_configuration_url
from dev.demo_lms.session import (
    check_csrf,
    csrf_token,
    new_session,
    read_session,
    write_session,
)
from dev.demo_lms.tools import (
    SUPPORTED_SCOPES,
    RegistrationError,
    all_tools,
    check_client_metadata,
    issue_registration_token,
    register_tool,
    registration_answer,
    take_registration_token,
)
from lti_app.runtime import commit, db, settings

CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "nonce", "azp", "name", "given_name", "family_name", "email"]


def platform_configuration(cfg: Settings) -> dict[str, Any]:
    """The platform's OpenID configuration with the LTI platform block."""
    return {
        "issuer": issuer(cfg),
        "authorization_endpoint": demo_url(cfg, "/auth"),
        "token_endpoint": demo_url(cfg, "/token"),
        "jwks_uri": demo_url(cfg, "/jwks"),
        "registration_endpoint": demo_url(cfg, "/register"),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", *SUPPORTED_SCOPES],
        "response_types_supported": ["id_token"],
        "response_modes_supported": ["form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": CLAIMS,
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "demo",
            "version": "1.0",
            "messages_supported": [{"type": t} for t in MESSAGE_TYPES],
            "variables": [
                "$ResourceLink.submission.endDateTime",
                "$Canvas.assignment.dueAt.iso8601",
                "$User.id",
                "$Person.email.primary",
                "$Context.id",
                "$ResourceLink.id",
            ],
        },
    }


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """Public platform configuration (the tool reads it during Dynamic Registration)."""
    return jsonify(platform_configuration(settings()))


@bp.post("/register")
def register() -> tuple[Response, int]:
    """Register a tool: one-time bearer token, checked client metadata; answer client_id and deployment_id."""
    auth = request.headers.get("Authorization", "")
    try:
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise RegistrationError("invalid_token", "A registration token (Authorization: Bearer) is required.", 401)
        token = take_registration_token(db(), auth[7:].strip())
        data = request.get_json(silent=True)
        tool = register_tool(db(), token, check_client_metadata(data), data)
    except RegistrationError as exc:
        db().rollback()
        return jsonify(error=exc.code, error_description=exc.description), exc.status
    commit()
    return jsonify(registration_answer(tool)), 200


def _admin(registration_url: str = "", frame_url: str = "", error: str = "", status: int = 200) -> Response:
    session = read_session() or new_session()
    body = render_template(
        "demo_lms/admin.html",
        tools=all_tools(db()),
        registration_url=registration_url,
        frame_url=frame_url,
        error=error,
        csrf=csrf_token(session),
        config_url=openid_configuration_url(settings()),
        tool_origins=tool_origins(),
    )
    response = make_response(body, status)
    write_session(response, session)
    return response


@bp.get("/admin")
@page
def admin() -> Response:
    """Install Cloud Workstation: ask for the tool's registration URL (or use CWC_DEMO_REGISTRATION_URL)."""
    return _admin(os.environ.get(REGISTRATION_URL_ENV, ""))


@bp.post("/admin/install")
def install() -> Response | BaseResponse:
    """Issue a registration token and open the tool's registration page in an iframe."""
    check_csrf()
    url = request.form.get("registration_url", "").strip()
    if not any(url.startswith(origin + "/") for origin in tool_origins()):
        return _admin(
            url,
            error="Paste the registration link the Cloud Workstation administrator gave you "
            f"(it starts with {tool_origins()[0]}/lti/register?invite=).",
            status=400,
        )
    token = issue_registration_token(db())
    commit()
    launch = registration_launch_url(url, settings(), token)
    if request.form.get("mode") == "window":  # the form targets a named window, which keeps window.opener
        return redirect(launch, code=303)
    return _admin(url, frame_url=launch)


@bp.get("/admin/tools.json")
def admin_tools() -> Response:
    """How many tools are registered (the admin page polls it while the tool registers)."""
    tools = all_tools(db())
    return jsonify(count=len(tools), latest=tools[0].client_name if tools else None)
