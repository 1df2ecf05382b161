"""A small but real LTI 1.3 platform for tests, served over HTTP on 127.0.0.1.

It has its own RSA keys (rotatable), publishes them as JWKS, mints signed id_tokens in Canvas or
Moodle shape, answers OpenID configuration and Dynamic Registration, and counts JWKS downloads.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.serving import serve_in_thread

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLES = {
    "instructor": [LIS + "membership#Instructor", LIS + "institution/person#Faculty"],
    "ta": [LIS + "membership/Instructor#TeachingAssistant", LIS + "membership#Instructor"],
    "ta_lower": [LIS + "membership/instructor#TeachingAssistant"],
    "student": [LIS + "membership#Learner", LIS + "institution/person#Student"],
    "institution_admin_only": [LIS + "institution/person#Administrator", LIS + "system/person#SysAdmin"],
    "mentor": [LIS + "membership#Mentor"],
}


@dataclass
class KeyPair:
    """An RSA key with its kid, PEM and public JWK."""

    kid: str
    pem: str
    jwk: dict[str, Any]
    private_key: rsa.RSAPrivateKey  # the key `pem` holds, kept parsed: parsing a PEM costs 50-100 ms of CPU

    @classmethod
    def generate(cls) -> KeyPair:
        """A new key; its public JWK is read from the key object, not from its PEM parsed again."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        kid = uuid.uuid4().hex[:12]
        public = json.loads(JWK.from_pyca(private.public_key()).export_public())
        public.update({"kid": kid, "alg": "RS256", "use": "sig"})
        return cls(kid, pem, public, private)


@dataclass
class User:
    """A platform user."""

    sub: str
    name: str
    email: str
    roles: list[str]


@dataclass
class TestPlatform:
    """The platform's state; `serve()` puts it on HTTP."""

    shape: str = "canvas"
    client_id: str = "10000000000042"
    deployment_id: str = "1:deploy-cs229"
    keys: list[KeyPair] = field(default_factory=lambda: [KeyPair.generate()])
    jwks_fetches: int = 0
    registrations: list[dict[str, Any]] = field(default_factory=list)
    registration_token: str = "reg-token-1"
    base_url: str = ""
    _server: Any = None

    @property
    def issuer(self) -> str:
        return "https://canvas.instructure.com" if self.shape == "canvas" else self.base_url

    @property
    def signing_key(self) -> KeyPair:
        return self.keys[-1]

    def rotate(self) -> KeyPair:
        """Add a new signing key (the old one stays published)."""
        self.keys.append(KeyPair.generate())
        return self.keys[-1]

    def user(self, role: str, n: int = 1) -> User:
        names = {"instructor": "Jennifer Martinez", "ta": "Alex Thompson", "student": "Emily Chen"}
        name = names.get(role, f"User {role} {n}")
        return User(f"{role}-{n}", name, f"{role}{n}@university.edu", ROLES.get(role, [role]))

    def claims(
        self,
        user: User,
        *,
        nonce: str,
        message_type: str = "LtiResourceLinkRequest",
        context_id: str = "cs229-fall2024",
        now: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A complete, valid id_token body in this platform's shape."""
        now = now or time.time()
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id if self.shape == "canvas" else [self.client_id],
            "azp": self.client_id,
            "sub": user.sub,
            "exp": int(now) + (3600 if self.shape == "canvas" else 60),
            "iat": int(now),
            "nonce": nonce,
            "name": user.name,
            "email": user.email,
            "given_name": user.name.split()[0],
            "family_name": user.name.split()[-1],
            LTI + "message_type": message_type,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "roles": user.roles,
            LTI + "target_link_uri": "http://localhost/lti/launch",
            LTI + "resource_link": {"id": "link-1", "title": "Cloud Workstation"},
            LTI + "context": {
                "id": context_id,
                "label": "CS 229",
                "title": "Machine Learning (Fall 2024)",
                "type": [LIS.replace("vocab/lis/v2/", "") + "course#CourseOffering"],
            },
            LTI + "tool_platform": {"guid": "platform-guid", "product_family_code": self.shape},
            LTI + "custom": {"due_at": "2024-09-02T23:59:00-07:00"} if self.shape == "canvas" else {},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.base_url}/nrps/{context_id}",
                "service_versions": ["2.0"],
            },
        }
        if self.shape == "canvas":
            body["https://purl.imsglobal.org/spec/lti/claim/custom"]["canvas_course_id"] = "12345"
        if message_type == "LtiDeepLinkingRequest":
            body.pop(LTI + "resource_link")
            body["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": f"{self.base_url}/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": False,
                "data": "dl-data-123",
            }
        body.update(extra)
        return {k: v for k, v in body.items() if v is not None}

    def sign(
        self, body: dict[str, Any], key: KeyPair | None = None, *, kid: str | None = None, alg: str = "RS256"
    ) -> str:
        """Sign an id_token with one of the platform's keys."""
        key = key or self.signing_key
        secret = key.private_key if alg == "RS256" else key.pem
        return jwt.encode(body, secret, algorithm=alg, headers={"kid": kid or key.kid})

    # --- HTTP side -------------------------------------------------------------------------------
    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.base_url,
            "authorization_endpoint": f"{self.base_url}/auth",
            "token_endpoint": f"{self.base_url}/token",
            "jwks_uri": f"{self.base_url}/jwks",
            "registration_endpoint": f"{self.base_url}/register",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}],
            },
        }

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/jwks":
            self.jwks_fetches += 1
            resp = Response(json.dumps({"keys": [k.jwk for k in self.keys]}), mimetype="application/json")
        elif request.path == "/.well-known/openid-configuration":
            resp = Response(json.dumps(self.openid_configuration()), mimetype="application/json")
        elif request.path == "/register" and request.method == "POST":
            resp = self._register(request)
        else:
            resp = Response("not found", status=404)
        return resp(environ, start_response)

    def _register(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.registration_token}":
            return Response(json.dumps({"error": "invalid_token"}), status=401, mimetype="application/json")
        data = request.get_json()
        self.registrations.append(data)
        answer = dict(data, client_id=self.client_id)
        tool_conf = dict(
            data["https://purl.imsglobal.org/spec/lti-tool-configuration"], deployment_id=self.deployment_id
        )
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = tool_conf
        return Response(json.dumps(answer), mimetype="application/json")

    def serve(self) -> TestPlatform:
        """Start the HTTP server on a free loopback port (daemon thread)."""
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
