"""The OAuth 2 token endpoint (client credentials with a signed JWT assertion) and bearer checks."""

from __future__ import annotations

import time

from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from tests.demo_lms.support import (
    AGS,
    ALL_SCOPES,
    NRPS_SCOPE,
    FakeTool,
    count_rows,
    new_key,
)

GRANT = {
    "grant_type": "client_credentials",
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
}


def _token(client: FlaskClient, assertion: str, scope: str = " ".join(ALL_SCOPES)):  # type: ignore[no-untyped-def]
    return client.post("/demo-lms/token", data={**GRANT, "client_assertion": assertion, "scope": scope})


def test_signed_assertion_gets_a_bearer_token(client: FlaskClient, tool: FakeTool, engine: Engine) -> None:
    resp = _token(client, tool.assertion(), scope=NRPS_SCOPE + " https://example.com/not-a-demo-scope")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == NRPS_SCOPE
    assert len(body["access_token"]) > 30 and resp.headers["Cache-Control"] == "no-store"
    assert count_rows(engine, "demo_access_tokens") == 1
    assert tool.jwks_fetches == 1


def test_reused_jti_is_refused(client: FlaskClient, tool: FakeTool, engine: Engine) -> None:
    assertion = tool.assertion(jti="only-once")
    assert _token(client, assertion).status_code == 200
    again = _token(client, tool.assertion(jti="only-once"))
    assert again.status_code == 401 and again.get_json()["error"] == "invalid_client"
    assert count_rows(engine, "demo_access_tokens") == 1


def test_wrong_audience_expired_and_forged_assertions_are_refused(
    client: FlaskClient, tool: FakeTool, engine: Engine
) -> None:
    now = int(time.time())
    other_kid, other_pem, _ = new_key()

    def claims(jti: str) -> dict[str, object]:
        """A well-formed assertion's claims, signed below with a key the platform does not have."""
        aud = "http://localhost/demo-lms/token"
        return {"iss": tool.client_id, "sub": tool.client_id, "aud": aud, "iat": now, "exp": now + 60, "jti": jti}

    bad = [
        tool.assertion(aud="http://localhost/demo-lms/auth"),
        tool.assertion(iat=now - 900, exp=now - 300),
        tool.assertion(sub="someone-else"),
        tool.assertion(jti=None),
        tool.sign(claims("forged"), pem=other_pem, kid=tool.key[0]),
        tool.sign(claims("unknown-kid"), pem=other_pem, kid=other_kid),
        tool.assertion(iss="not-registered", sub="not-registered"),
        "not-a-jwt",
    ]
    for assertion in bad:
        resp = _token(client, assertion)
        assert resp.status_code == 401, (assertion, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "invalid_client"
    assert count_rows(engine, "demo_access_tokens") == 0 and count_rows(engine, "demo_seen_jtis") == 0


def test_unknown_kid_refetches_the_tool_keys_once(client: FlaskClient, tool: FakeTool) -> None:
    assert _token(client, tool.assertion()).status_code == 200
    assert tool.jwks_fetches == 1
    tool.key = new_key()  # the tool rotates its key
    assert _token(client, tool.assertion()).status_code == 200
    assert tool.jwks_fetches == 2


def test_grant_type_and_scope_are_checked(client: FlaskClient, tool: FakeTool, engine: Engine) -> None:
    form = {**GRANT, "grant_type": "password", "client_assertion": tool.assertion()}
    resp = client.post("/demo-lms/token", data=form)
    assert resp.status_code == 400 and resp.get_json()["error"] == "unsupported_grant_type"
    resp = _token(client, tool.assertion(), scope="https://example.com/other")
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_scope"
    assert count_rows(engine, "demo_access_tokens") == 0


def test_services_need_a_live_token_with_the_right_scope(client: FlaskClient, tool: FakeTool) -> None:
    url = "/demo-lms/api/contexts/cs229-fall2024/memberships"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer made-up"}).status_code == 401
    score_only = _token(client, tool.assertion(), scope=AGS + "score").get_json()["access_token"]
    resp = client.get(url, headers={"Authorization": "Bearer " + score_only})
    assert resp.status_code == 403 and resp.headers["WWW-Authenticate"].startswith("Bearer error=")
