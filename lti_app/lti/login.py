"""OIDC third-party login initiation (GET or POST), answering with a redirect or a platform-storage page."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, make_response, redirect, render_template, request

from lti_app.errors import LaunchRejected
from lti_app.lti.registry import PlatformEntry
from lti_app.lti.services import login_store
from lti_app.lti.state import LoginState, cookie_name, storage_key
from lti_app.runtime import db, runtime, settings

LOGIN_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
    "lti_storage_target",
)


def _login_request() -> dict[str, str]:
    """The login's parameters (query for GET, form for POST), stripped, empty ones left out."""
    values = request.values  # werkzeug builds this combined view on every access: read it once
    found = {name: (values.get(name) or "").strip() for name in LOGIN_PARAMS}
    return {name: value for name, value in found.items() if value}


def _check_target(target: str) -> None:
    base = settings().base_url.rstrip("/") + "/"
    if not target.startswith(base):
        raise LaunchRejected("The link's target is not part of this tool (target_link_uri).", status=400)


def auth_redirect_url(platform: PlatformEntry, login: LoginState) -> str:
    """The platform's OIDC authorization URL; redirect_uri is always our launch URL."""
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": settings().url("/lti/launch"),
        "state": login.state,
        "nonce": login.nonce,
        "login_hint": login.login_params.get("login_hint", ""),
    }
    if login.login_params.get("lti_message_hint"):
        params["lti_message_hint"] = login.login_params["lti_message_hint"]
    sep = "&" if "?" in platform.auth_login_url else "?"
    return platform.auth_login_url + sep + urlencode(params)


def set_binding_cookie(response: Response, login: LoginState) -> None:
    """The browser-binding cookie: third-party (SameSite=None; Partitioned) on HTTPS."""
    cfg = settings()
    response.set_cookie(
        cookie_name(login.state),
        login.binding,
        max_age=cfg.login_state_ttl_s,
        httponly=True,
        path="/lti/",
        secure=cfg.secure_cookies,
        samesite="None" if cfg.secure_cookies else "Lax",
        partitioned=cfg.secure_cookies,
    )


def handle_login() -> Response:
    """Validate the login request, remember it, and send the browser to the platform."""
    params = _login_request()
    iss, login_hint, target = params.get("iss"), params.get("login_hint"), params.get("target_link_uri")
    if not iss or not login_hint or not target:
        raise LaunchRejected("The login request is missing iss, login_hint or target_link_uri.", status=400)
    _check_target(target)
    platform = runtime().registry.platform(db(), iss, params.get("client_id"))  # no query when cached
    if platform is None:
        raise LaunchRejected(
            "This LMS is not registered with Cloud Workstation. Ask your LMS administrator to install it.", status=400
        )
    login = LoginState.new(platform.id, platform.issuer, platform.client_id, params)
    login_store().save(login)
    url = auth_redirect_url(platform, login)
    if params.get("lti_storage_target"):
        response = make_response(
            render_template(
                "lti/login_storage.html",
                auth_url=url,
                target=params["lti_storage_target"],
                platform_origin=platform.origin,
                key=storage_key(login.state),
                value=login.binding,
            )
        )
    else:
        response = redirect(url, code=302)
    set_binding_cookie(response, login)
    return response
