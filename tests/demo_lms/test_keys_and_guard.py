"""JWKS, OpenID configuration, the loopback guard and the redirect to the demo host name."""

from __future__ import annotations

import jwt
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from config.settings import Settings
from lti_app import create_app
from tests.demo_lms.support import ISSUER, count_rows


def test_jwks_publishes_one_rs256_signing_key_made_on_first_use(client: FlaskClient, engine: Engine) -> None:
    assert count_rows(engine, "demo_keys") == 0
    resp = client.get("/demo-lms/jwks")
    assert resp.status_code == 200
    keys = resp.get_json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig" and keys[0]["kid"]
    assert "d" not in keys[0] and "p" not in keys[0], "private parts must never be published"
    assert jwt.PyJWK(keys[0]).key.key_size == 2048
    assert client.get("/demo-lms/jwks").get_json() == resp.get_json(), "the key is kept, not regenerated"
    assert count_rows(engine, "demo_keys") == 1


def test_openid_configuration_names_the_demo_endpoints(client: FlaskClient) -> None:
    config = client.get("/demo-lms/.well-known/openid-configuration").get_json()
    assert config["issuer"] == ISSUER
    assert config["authorization_endpoint"] == ISSUER + "/auth"
    assert config["token_endpoint"] == ISSUER + "/token"
    assert config["jwks_uri"] == ISSUER + "/jwks"
    assert config["registration_endpoint"] == ISSUER + "/register"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "id_token" in config["response_types_supported"] and "openid" in config["scopes_supported"]
    platform = config["https://purl.imsglobal.org/spec/lti-platform-configuration"]
    assert platform["product_family_code"] == "demo" and platform["version"]
    assert [m["type"] for m in platform["messages_supported"]] == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]


def test_requests_from_another_machine_get_404(client: FlaskClient, engine: Engine) -> None:
    for path in ("/demo-lms/", "/demo-lms/jwks", "/demo-lms/.well-known/openid-configuration"):
        resp = client.get(path, environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert resp.status_code == 404 and "Demo LMS" not in resp.get_data(as_text=True)
    assert count_rows(engine, "demo_keys") == 0 and count_rows(engine, "demo_courses") == 0


def test_demo_lms_is_absent_when_the_setting_is_off(settings: Settings) -> None:
    app: Flask = create_app(settings.with_(demo_lms=False))
    try:
        assert app.test_client().get("/demo-lms/").status_code == 404
        assert app.test_client().get("/demo-lms/jwks").status_code == 404
    finally:
        app.extensions["cwc"].engine.dispose()


def test_pages_on_the_tool_host_redirect_to_the_demo_host(client: FlaskClient) -> None:
    resp = client.get("/demo-lms/course?link=3", base_url="http://127.0.0.1")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "http://localhost/demo-lms/course?link=3"
    assert client.get("/demo-lms/", base_url="http://127.0.0.1").headers["Location"] == "http://localhost/demo-lms/"
