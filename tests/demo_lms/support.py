"""A fake tool for the Demo LMS tests: its own RSA key, a JWKS served over HTTP, signed JWTs, form helpers."""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from jwcrypto.jwk import JWK
from sqlalchemy import text
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.serving import serve_in_thread

ISSUER = "http://localhost/demo-lms"
TOKEN_URL = ISSUER + "/token"
TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
ALL_SCOPES = [NRPS_SCOPE, AGS + "lineitem", AGS + "lineitem.readonly", AGS + "result.readonly", AGS + "score"]


def new_key() -> tuple[str, str, dict[str, Any]]:
    """Return (kid, private PEM, public JWK)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = uuid.uuid4().hex[:10]
    public = json.loads(JWK.from_pyca(private.public_key()).export_public())  # not the PEM parsed again
    public.update(kid=kid, alg="RS256", use="sig")
    return kid, pem, public


@dataclass
class FakeTool:
    """A tool that publishes its JWKS on 127.0.0.1 and signs what a real tool signs."""

    key: tuple[str, str, dict[str, Any]] = field(default_factory=new_key)
    base_url: str = ""
    client_id: str = ""
    deployment_id: str = ""
    jwks_fetches: int = 0
    _server: Any = None

    def serve(self) -> FakeTool:
        """Serve the JWKS on a free loopback port."""

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            if Request(environ).path == "/.well-known/jwks.json":
                self.jwks_fetches += 1
                resp = Response(json.dumps({"keys": [self.key[2]]}), mimetype="application/json")
            else:
                resp = Response("not found", status=404)
            return resp(environ, start_response)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def registration(self) -> dict[str, Any]:
        """The client metadata pylti1p3's DynamicRegistration would send."""
        launch = self.base_url + "/lti/launch"
        return {
            "response_types": ["id_token"],
            "application_type": "web",
            "client_name": "Cloud Workstation Classroom",
            "initiate_login_uri": self.base_url + "/lti/login",
            "grant_types": ["implicit", "client_credentials"],
            "jwks_uri": self.base_url + "/.well-known/jwks.json",
            "token_endpoint_auth_method": "private_key_jwt",
            "redirect_uris": [launch],
            "scope": " ".join(ALL_SCOPES),
            TOOL_CONF: {
                "domain": urlparse(self.base_url).netloc,
                "target_link_uri": launch,
                "claims": ["iss", "sub", "name", "email"],
                "description": "test",
                "messages": [
                    {
                        "type": "LtiResourceLinkRequest",
                        "target_link_uri": launch,
                        "custom_parameters": {"due_at": "$Canvas.assignment.dueAt.iso8601"},
                    },
                    {"type": "LtiDeepLinkingRequest", "target_link_uri": launch},
                ],
            },
        }

    def sign(self, claims: dict[str, Any], pem: str | None = None, kid: str | None = None) -> str:
        """Sign with the tool's key (or another one)."""
        return jwt.encode(claims, pem or self.key[1], algorithm="RS256", headers={"kid": kid or self.key[0]})

    def assertion(self, **overrides: Any) -> str:
        """A client assertion for the token endpoint."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return self.sign({k: v for k, v in claims.items() if v is not None})


def count_rows(engine: Engine, table: str) -> int:
    """Rows in a table."""
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def csrf_of(page: str) -> str:
    """The CSRF hidden field of a rendered page."""
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "page has no CSRF field"
    return match.group(1)


def form_fields(page: str) -> dict[str, str]:
    """Hidden input values of an auto-submit form."""
    return {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def iframe_src(page: str) -> str:
    """The tool iframe's src on the course page."""
    match = re.search(r'<iframe class="tool-frame" src="([^"]+)"', page)
    assert match, "course page has no tool iframe"
    return html.unescape(match.group(1))


def query(url: str) -> dict[str, str]:
    """A URL's query parameters (single values)."""
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def sign_in(client: FlaskClient, user_id: str) -> None:
    """Sign in to the Demo LMS as a persona through the real form."""
    page = client.get("/demo-lms/").get_data(as_text=True)
    resp = client.post("/demo-lms/sign-in", data={"csrf": csrf_of(page), "persona": user_id})
    assert resp.status_code == 303, resp.get_data(as_text=True)


def auth_params(tool: FakeTool, login_url: str, **overrides: str | None) -> dict[str, str]:
    """The authorization request the tool would send after the login URL the Demo LMS gave it."""
    login = query(login_url)
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": tool.client_id,
        "redirect_uri": tool.base_url + "/lti/launch",
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        "nonce": uuid.uuid4().hex,
        "state": "state-" + uuid.uuid4().hex,
    }
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}
