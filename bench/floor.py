"""The floor of a launch: the two requests doing only the work the issue itself requires, nothing else.

Served by the benchmark's gunicorn next to the real endpoints, so the run can say how much of a launch's cost
any implementation must pay on this machine, and how much is ours:

- GET /bench/floor/login: look the platform up (the registry cache, as the real login), store a login record
  with state and nonce in Redis (the issue: launch data in Redis), answer 302 to the platform with the cookie.
- POST /bench/floor/launch: take the record from Redis (GETDEL), verify the id_token (RS256, iss, aud, exp,
  nonce) with the cached platform key, upsert the person in one autocommitted statement (the issue: persisted
  people), keep the launch data in Redis, sign a tool token and answer 303.

No course, enrollment, audit event, role mapping, deployment approval, browser binding, nonce replay record,
deep linking or LMS sync facts: a launch that does only this would not meet the issue. It is a yardstick.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

import jwt
from flask import Flask, Response, redirect, request
from sqlalchemy import text

from lti_app.auth import issue_token
from lti_app.errors import LaunchRejected
from lti_app.runtime import db, runtime, settings

PREFIX = "cwc:bench:floor:"
PERSON = text("""
INSERT INTO people (platform_id, sub, name, email, given_name, family_name, is_test_user, created_at, updated_at)
VALUES (:platform_id, :sub, :name, :email, '', '', false, now(), now())
ON CONFLICT ON CONSTRAINT uq_people_platform_sub DO UPDATE SET name = EXCLUDED.name
RETURNING id, set_config('synchronous_commit', 'off', true)
""")  # asynchronous commit as a returning member's launch: it writes nothing audited and no money


def floor_login() -> Response:
    rt = runtime()
    platform = rt.registry.platform(db(), request.args["iss"], request.args.get("client_id"))
    if platform is None:
        raise LaunchRejected("unknown platform", status=400)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    record = {"platform_id": platform.id, "issuer": platform.issuer, "client_id": platform.client_id, "nonce": nonce}
    rt.redis.set(PREFIX + state, json.dumps(record), ex=600)
    query = {"state": state, "nonce": nonce, "client_id": platform.client_id, "login_hint": request.args["login_hint"]}
    response = redirect(platform.auth_login_url + "?" + urlencode(query), code=302)
    response.set_cookie("cwc_floor", secrets.token_urlsafe(32), httponly=True, path="/bench/")
    return response


def floor_launch() -> Response:
    rt = runtime()
    raw = rt.redis.getdel(PREFIX + request.form["state"])
    if raw is None:
        raise LaunchRejected("unknown state")
    login = json.loads(raw)
    token = request.form["id_token"]
    platform = rt.registry.platform(db(), login["issuer"], login["client_id"])
    assert platform is not None
    key = rt.platform_keys.public_key(platform.key_set_url, jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=login["client_id"], issuer=login["issuer"])
    if claims["nonce"] != login["nonce"]:
        raise LaunchRejected("nonce")
    values = {"platform_id": platform.id, "sub": claims["sub"], "name": claims.get("name", ""), "email": ""}
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # one statement, no BEGIN
        person_id = conn.execute(PERSON, values).scalar()
    launch_id = secrets.token_urlsafe(16)
    rt.redis.set("cwc:lti:launch:" + launch_id, json.dumps(claims), ex=settings().tool_token_max_age_s)
    tool = issue_token(launch_id=launch_id, deployment_pk=0, person_id=int(person_id or 0), course_id=0, level="s")
    return redirect("/app/home?" + urlencode({"t": tool}), code=303)


def add_floor(app: Flask) -> None:
    """Add the two floor endpoints to the benchmark's app."""
    app.add_url_rule("/bench/floor/login", "bench_floor_login", floor_login)
    app.add_url_rule("/bench/floor/launch", "bench_floor_launch", floor_launch, methods=["POST"])
