"""Drive a full LTI launch through the tool with Flask's test client and a TestPlatform."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from classroom.models import DeploymentStatus
from classroom.services.platforms import PlatformInput, register_platform, set_deployment_status
from tests.support.platform import TestPlatform, User

TOOL = "http://localhost"


def register(session: Session, platform: TestPlatform, *, approve: bool = True) -> int:
    """Store the platform in the tool (as the CLI would) and approve its deployment."""
    p = register_platform(
        session,
        PlatformInput(
            issuer=platform.issuer,
            client_id=platform.client_id,
            auth_login_url=f"{platform.base_url}/auth",
            auth_token_url=f"{platform.base_url}/token",
            key_set_url=f"{platform.base_url}/jwks",
            name=platform.shape,
            product=platform.shape,
        ),
        allow_http=True,
    )
    if approve:
        set_deployment_status(session, p.id, platform.deployment_id, DeploymentStatus.APPROVED)
    session.commit()
    return p.id


@dataclass
class Login:
    """What the tool's login step sent the browser to the platform with."""

    state: str
    nonce: str
    params: dict[str, str]


def login(client: FlaskClient, platform: TestPlatform, user: User, *, method: str = "GET", **extra: str) -> Login:
    """Start an OIDC login and return the state and nonce the tool chose."""
    params = {
        "iss": platform.issuer,
        "login_hint": user.sub,
        "target_link_uri": f"{TOOL}/lti/launch",
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
        "lti_message_hint": "hint-1",
        **extra,
    }
    resp = client.post("/lti/login", data=params) if method == "POST" else client.get("/lti/login", query_string=params)
    assert resp.status_code == 302, resp.data[:500]
    location = urlparse(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{platform.base_url}/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["redirect_uri"] == f"{TOOL}/lti/launch"
    return Login(query["state"], query["nonce"], query)


def post_launch(client: FlaskClient, state: str, id_token: str, **extra: str) -> Any:
    """POST the id_token the way the platform's auto-submitting form does."""
    return client.post("/lti/launch", data={"id_token": id_token, "state": state, **extra})


def launch(
    client: FlaskClient,
    platform: TestPlatform,
    user: User,
    *,
    message_type: str = "LtiResourceLinkRequest",
    login_method: str = "GET",
    **claims: Any,
) -> Any:
    """A complete, valid launch; returns the launch response (303 to the tool's page)."""
    started = login(client, platform, user, method=login_method)
    body = platform.claims(user, nonce=started.nonce, message_type=message_type, **claims)
    return post_launch(client, started.state, platform.sign(body))


def hidden_fields(html: str) -> dict[str, str]:
    """The tool token and CSRF token a page's form carries (to post the form as the browser would)."""
    return dict(re.findall(r'name="(t|csrf_token)" value="([^"]+)"', html))


def tool_token(response: Any) -> str:
    """The tool token from a launch's redirect."""
    assert response.status_code == 303, response.data[:500]
    return parse_qs(urlparse(response.headers["Location"]).query)["t"][0]
