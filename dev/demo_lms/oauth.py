"""OAuth 2 client credentials with a JWT client assertion, and the bearer-token check for the services."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Response, g, jsonify, request
from sqlalchemy import select

from classroom.db import utcnow
from dev.demo_lms.blueprint import bp
from dev.demo_lms.models import DemoAccessToken, DemoTool
from dev.demo_lms.origins import demo_url
from dev.demo_lms.tool_keys import (
    ToolTokenInvalid,
    remember_once,
    unverified_issuer,
    verify_tool_jwt,
)
from dev.demo_lms.tools import token_hash, tool_by_client_id
from lti_app.runtime import commit, db, settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_TTL_S = 3600
MAX_ASSERTION_LIFETIME_S = 3600
F = TypeVar("F", bound=Callable[..., Any])


def _oauth_error(error: str, description: str, status: int) -> tuple[Response, int]:
    response = jsonify(error=error, error_description=description)
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.post("/token")
def token() -> tuple[Response, int]:
    """Exchange a signed client assertion for an access token with the granted scopes."""
    form = request.form
    if form.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "Only client_credentials is supported.", 400)
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        return _oauth_error("invalid_client", "A JWT client assertion (jwt-bearer) is required.", 401)
    assertion = form["client_assertion"]
    try:
        tool = tool_by_client_id(db(), unverified_issuer(assertion))
        if tool is None:
            raise ToolTokenInvalid("The assertion's iss is not a registered client_id.")
        claims = verify_tool_jwt(tool, assertion, demo_url(settings(), "/token"), require=("sub", "jti"))
        if claims["sub"] != tool.client_id:
            raise ToolTokenInvalid("The assertion's sub must be the client_id.")
        if int(claims["exp"]) - int(claims["iat"]) > MAX_ASSERTION_LIFETIME_S:
            raise ToolTokenInvalid("The assertion lives too long (at most an hour).")
        granted = [s for s in tool.scopes if s in str(form.get("scope", "")).split()]
        if not granted:
            return _oauth_error("invalid_scope", "None of the requested scopes was granted to this tool.", 400)
        remember_once(db(), tool.client_id, str(claims["jti"]), claims["exp"])
    except ToolTokenInvalid as exc:
        db().rollback()
        return _oauth_error("invalid_client", str(exc), 401)
    value = secrets.token_urlsafe(32)
    db().add(
        DemoAccessToken(
            token_hash=token_hash(value),
            tool_id=tool.id,
            scopes=granted,
            expires_at=utcnow() + timedelta(seconds=TOKEN_TTL_S),
        )
    )
    commit()
    response = jsonify(access_token=value, token_type="Bearer", expires_in=TOKEN_TTL_S, scope=" ".join(granted))
    response.headers["Cache-Control"] = "no-store"
    return response, 200


def _bearer_error(status: int, error: str, description: str) -> tuple[Response, int]:
    response, status = _oauth_error(error, description, status)
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response, status


def requires_scope(*scopes: str) -> Callable[[F], F]:
    """Allow the call with a live access token holding any of these scopes; sets g.demo_tool."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            auth = request.headers.get("Authorization", "")
            value = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            row = value and db().scalar(select(DemoAccessToken).where(DemoAccessToken.token_hash == token_hash(value)))
            if not row or row.expires_at <= utcnow():
                return _bearer_error(401, "invalid_token", "A valid access token is required.")
            if not set(scopes) & set(row.scopes):
                return _bearer_error(403, "insufficient_scope", "The token lacks the scope: " + " or ".join(scopes))
            g.demo_tool = db().get(DemoTool, row.tool_id)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
