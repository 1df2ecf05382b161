"""Tools registered with the Demo LMS: one-time registration tokens, client metadata checks, storage."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.db import utcnow
from dev.demo_lms.messages import AGS_SCOPES, MESSAGE_TYPES, NRPS_SCOPE
from dev.demo_lms.models import DemoRegistrationToken, DemoTool

TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
SUPPORTED_SCOPES = (NRPS_SCOPE, *AGS_SCOPES)
TOKEN_TTL = timedelta(hours=1)


class RegistrationError(ValueError):
    """The registration request is refused; `code` is the OAuth 2 DCR error code."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


@dataclass(frozen=True)
class ToolMetadata:
    """The checked parts of a tool's registration request."""

    client_name: str
    initiate_login_uri: str
    redirect_uris: list[str]
    jwks_uri: str
    target_link_uri: str
    domain: str
    scopes: list[str]
    messages: list[dict[str, Any]]
    claims: list[str]


def token_hash(token: str) -> str:
    """SHA-256 hex of a token (only hashes are stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _url(value: Any, field: str, domain: str) -> str:
    parts = urlparse(value if isinstance(value, str) else "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistrationError("invalid_client_metadata", f"{field} must be an absolute http(s) URL.")
    if parts.netloc.lower() != domain.lower() and parts.hostname != domain.lower():
        raise RegistrationError("invalid_client_metadata", f"{field} is not on the tool's domain {domain}.")
    return str(value)


def _str_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def check_client_metadata(data: Any) -> ToolMetadata:
    """Validate an LTI Dynamic Registration request body; raise RegistrationError with the reason."""
    if not isinstance(data, dict):
        raise RegistrationError("invalid_client_metadata", "The registration must be a JSON object.")
    conf = data.get(TOOL_CONF)
    if not isinstance(conf, dict):
        raise RegistrationError("invalid_client_metadata", f"The {TOOL_CONF} block is missing.")
    domain = conf.get("domain")
    if not isinstance(domain, str) or not domain.strip():
        raise RegistrationError("invalid_client_metadata", "The tool configuration needs a domain.")
    if "id_token" not in _str_list(data.get("response_types")):
        raise RegistrationError("invalid_client_metadata", "response_types must include id_token.")
    if not {"implicit", "client_credentials"} <= set(_str_list(data.get("grant_types"))):
        raise RegistrationError("invalid_client_metadata", "grant_types must include implicit and client_credentials.")
    if data.get("token_endpoint_auth_method", "private_key_jwt") != "private_key_jwt":
        raise RegistrationError("invalid_client_metadata", "token_endpoint_auth_method must be private_key_jwt.")
    redirects = data.get("redirect_uris")
    if not isinstance(redirects, list) or not redirects:
        raise RegistrationError("invalid_redirect_uri", "redirect_uris must be a non-empty list.")
    messages = [m for m in conf.get("messages") or [] if isinstance(m, dict)]
    unknown = [str(m.get("type")) for m in messages if m.get("type") not in MESSAGE_TYPES]
    if unknown:
        raise RegistrationError("invalid_client_metadata", f"Unsupported message types: {', '.join(unknown)}.")
    for m in messages:
        if m.get("target_link_uri"):
            _url(m["target_link_uri"], "messages.target_link_uri", domain)
    requested = str(data.get("scope") or "").split()
    return ToolMetadata(
        client_name=str(data.get("client_name") or "Unnamed tool")[:255],
        initiate_login_uri=_url(data.get("initiate_login_uri"), "initiate_login_uri", domain),
        redirect_uris=[_url(u, "redirect_uris", domain) for u in redirects],
        jwks_uri=_url(data.get("jwks_uri"), "jwks_uri", domain),
        target_link_uri=_url(conf.get("target_link_uri"), "target_link_uri", domain),
        domain=domain,
        scopes=[s for s in SUPPORTED_SCOPES if s in requested],
        messages=messages,
        claims=_str_list(conf.get("claims")),
    )


def issue_registration_token(session: Session) -> str:
    """Create a one-time registration token (valid an hour) and return it; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    session.add(DemoRegistrationToken(token_hash=token_hash(token), expires_at=utcnow() + TOKEN_TTL))
    session.flush()
    return token


def take_registration_token(session: Session, token: str) -> DemoRegistrationToken:
    """Lock and return an unused, unexpired token, or raise RegistrationError (401)."""
    row = session.scalar(
        select(DemoRegistrationToken).where(DemoRegistrationToken.token_hash == token_hash(token)).with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise RegistrationError("invalid_token", "The registration token is unknown, used or expired.", 401)
    return row


def register_tool(session: Session, token: DemoRegistrationToken, meta: ToolMetadata, raw: dict[str, Any]) -> DemoTool:
    """Store the tool with a new client_id and deployment_id, and spend the token (flushes)."""
    tool = DemoTool(
        client_id="demo-" + secrets.token_hex(8),
        deployment_id="deploy-" + secrets.token_hex(4),
        client_name=meta.client_name,
        initiate_login_uri=meta.initiate_login_uri,
        redirect_uris=meta.redirect_uris,
        jwks_uri=meta.jwks_uri,
        target_link_uri=meta.target_link_uri,
        domain=meta.domain,
        scopes=meta.scopes,
        messages=meta.messages,
        claims=meta.claims,
        registration=raw,
    )
    session.add(tool)
    session.flush()
    token.used_at, token.tool_id = utcnow(), tool.id
    return tool


def registration_answer(tool: DemoTool) -> dict[str, Any]:
    """The registration response: the request echoed plus client_id, granted scope and deployment_id."""
    answer = dict(tool.registration)
    answer.update(client_id=tool.client_id, scope=" ".join(tool.scopes))
    answer[TOOL_CONF] = {**(tool.registration.get(TOOL_CONF) or {}), "deployment_id": tool.deployment_id}
    return answer


def latest_tool(session: Session) -> DemoTool | None:
    """The most recently registered tool (the one the course links launch)."""
    return session.scalar(select(DemoTool).order_by(DemoTool.id.desc()).limit(1))


def tool_by_client_id(session: Session, client_id: str) -> DemoTool | None:
    """Find a registered tool."""
    return session.scalar(select(DemoTool).where(DemoTool.client_id == client_id)) if client_id else None


def all_tools(session: Session) -> list[DemoTool]:
    """Every registered tool, newest first."""
    return list(session.scalars(select(DemoTool).order_by(DemoTool.id.desc())))
