"""One rejection test per hardened check: each answers 4xx with a page and creates nothing."""

from __future__ import annotations

import time

from tests.conftest import count_rows
from tests.support.lti import TOOL, launch, login, post_launch, register
from tests.support.platform import KeyPair


def assert_nothing_created(engine, redis) -> None:  # type: ignore[no-untyped-def]
    assert count_rows(engine, "people") == 0
    assert count_rows(engine, "enrollments") == 0
    assert count_rows(engine, "courses") == 0
    assert not list(redis.scan_iter("cwc:lti:launch:*")), "no launch (session) data may be stored"


def _post(client, canvas, *, user=None, **claims):  # type: ignore[no-untyped-def]
    user = user or canvas.user("student")
    started = login(client, canvas, user)
    body = canvas.claims(user, nonce=started.nonce, **claims)
    return post_launch(client, started.state, canvas.sign(body))


def _rejected(resp, status: int = 401) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.data[:400]
    assert b"<h1>" in resp.data  # a readable page, not a stack trace


def test_missing_exp_is_rejected(client, canvas, engine, redis):
    _rejected(_post(client, canvas, exp=None))
    assert_nothing_created(engine, redis)


def test_expired_token_beyond_leeway_is_rejected(client, canvas, engine, redis):
    _rejected(_post(client, canvas, exp=int(time.time()) - 120))
    assert_nothing_created(engine, redis)


def test_iat_in_the_future_beyond_leeway_is_rejected(client, canvas, engine, redis):
    _rejected(_post(client, canvas, iat=int(time.time()) + 300))
    assert_nothing_created(engine, redis)


def test_small_clock_skew_is_accepted(client, canvas):
    resp = _post(client, canvas, iat=int(time.time()) + 30, exp=int(time.time()) - 20)
    assert resp.status_code == 303


def test_audience_of_another_tool_is_rejected(client, canvas, engine, redis):
    _rejected(_post(client, canvas, aud="some-other-tool", azp=None))
    assert_nothing_created(engine, redis)


def test_multiple_audiences_without_azp_are_rejected(client, canvas, engine, redis):
    _rejected(_post(client, canvas, aud=["other-tool", canvas.client_id], azp=None))
    assert_nothing_created(engine, redis)


def test_azp_of_another_tool_is_rejected(client, canvas, engine, redis):
    _rejected(_post(client, canvas, aud=[canvas.client_id, "other-tool"], azp="other-tool"))
    assert_nothing_created(engine, redis)


def test_our_client_second_in_aud_with_matching_azp_is_accepted(client, canvas):
    """Registration comes from the login, not from aud[0]."""
    assert _post(client, canvas, aud=["other-tool", canvas.client_id], azp=canvas.client_id).status_code == 303


def test_nonce_not_from_our_login_is_rejected(client, canvas, engine, redis):
    user = canvas.user("student")
    started = login(client, canvas, user)
    body = canvas.claims(user, nonce="attacker-chosen-nonce")
    _rejected(post_launch(client, started.state, canvas.sign(body)))
    assert_nothing_created(engine, redis)


def test_reposting_the_same_id_token_and_state_is_rejected(client, canvas, engine):
    user = canvas.user("student")
    started = login(client, canvas, user)
    token = canvas.sign(canvas.claims(user, nonce=started.nonce))
    assert post_launch(client, started.state, token).status_code == 303
    people, audits = count_rows(engine, "people"), count_rows(engine, "audit_events")
    again = post_launch(client, started.state, token, cwc_binding="guess")
    _rejected(again)
    assert count_rows(engine, "audit_events") == audits and count_rows(engine, "people") == people


def test_unknown_state_is_rejected(client, canvas, engine, redis):
    user = canvas.user("student")
    body = canvas.claims(user, nonce="n")
    _rejected(post_launch(client, "state-never-issued", canvas.sign(body), cwc_binding="x"))
    assert_nothing_created(engine, redis)


def test_state_from_another_browser_is_rejected(app, canvas, engine, redis):
    """States are per browser: a login started in one browser cannot be completed in another."""
    victim, attacker = app.test_client(), app.test_client()
    user = canvas.user("student")
    started = login(victim, canvas, user)
    token = canvas.sign(canvas.claims(user, nonce=started.nonce))
    _rejected(post_launch(attacker, started.state, token, cwc_binding="wrong-binding"))  # uses nothing up
    resp = post_launch(attacker, started.state, token)  # no binding at all: parked for a new window, not signed in
    assert resp.status_code == 401 and b"new window" in resp.data
    assert_nothing_created(engine, redis)


def test_token_from_another_issuer_than_the_login_is_rejected(client, session, canvas, moodle, engine, redis):
    register(session, moodle)
    user = canvas.user("student")
    started = login(client, canvas, user)  # login says Canvas …
    body = moodle.claims(user, nonce=started.nonce, aud=canvas.client_id)  # … token says Moodle
    _rejected(post_launch(client, started.state, moodle.sign(body)))
    assert_nothing_created(engine, redis)


def test_wrong_signature_is_rejected(client, canvas, engine, redis):
    user = canvas.user("student")
    started = login(client, canvas, user)
    forged = KeyPair.generate()
    body = canvas.claims(user, nonce=started.nonce)
    _rejected(post_launch(client, started.state, canvas.sign(body, forged, kid=canvas.signing_key.kid)))
    assert_nothing_created(engine, redis)


def test_symmetric_algorithm_is_rejected(client, canvas, engine, redis):
    import jwt

    user = canvas.user("student")
    started = login(client, canvas, user)
    body = canvas.claims(user, nonce=started.nonce)
    token = jwt.encode(
        body, "shared-secret-long-enough-for-hs256-xxxxxxxx", algorithm="HS256", headers={"kid": canvas.signing_key.kid}
    )
    _rejected(post_launch(client, started.state, token))
    assert_nothing_created(engine, redis)


def test_login_with_foreign_target_link_uri_is_rejected(client, canvas, redis):
    resp = client.get(
        "/lti/login",
        query_string={
            "iss": canvas.issuer,
            "login_hint": "u",
            "client_id": canvas.client_id,
            "target_link_uri": "https://evil.example/steal",
        },
    )
    _rejected(resp, 400)
    assert not list(redis.scan_iter("cwc:lti:state:*"))


def test_login_from_unknown_platform_is_rejected(client, redis):
    resp = client.get(
        "/lti/login",
        query_string={"iss": "https://unknown.example", "login_hint": "u", "target_link_uri": f"{TOOL}/lti/launch"},
    )
    _rejected(resp, 400)
    assert not list(redis.scan_iter("cwc:lti:state:*"))


def test_redirect_uri_is_always_our_launch_url(client, canvas):
    started = login(client, canvas, canvas.user("student"), target_link_uri=f"{TOOL}/app/home")
    assert started.params["redirect_uri"] == f"{TOOL}/lti/launch"


def test_unknown_deployment_waits_for_approval(client, session, platform, engine, redis):
    register(session, platform, approve=False)
    resp = launch(client, platform, platform.user("instructor"))
    _rejected(resp, 403)
    assert b"approval" in resp.data
    assert_nothing_created(engine, redis)
    with engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT status::text FROM deployments")).scalar_one() == "pending"


def test_role_without_course_access_is_refused(client, canvas, engine, redis):
    resp = launch(client, canvas, canvas.user("institution_admin_only"))
    _rejected(resp, 403)
    assert_nothing_created(engine, redis)


def test_launch_without_context_is_refused(client, canvas, engine, redis):
    user = canvas.user("student")
    started = login(client, canvas, user)
    body = canvas.claims(user, nonce=started.nonce)
    body.pop("https://purl.imsglobal.org/spec/lti/claim/context")
    _rejected(post_launch(client, started.state, canvas.sign(body)), 400)
    assert_nothing_created(engine, redis)


def test_tool_token_is_required_and_tamper_proof(client, canvas):
    assert client.get("/app/home").status_code == 401
    assert client.get("/app/home", query_string={"t": "forged.token.value"}).status_code == 401


def test_student_cannot_start_deep_linking(client, canvas, engine, redis):
    resp = launch(client, canvas, canvas.user("student"), message_type="LtiDeepLinkingRequest")
    _rejected(resp, 403)
    assert_nothing_created(engine, redis)


def _set_status(session, platform, status) -> None:  # type: ignore[no-untyped-def]
    from classroom.models import Platform
    from classroom.services.platforms import set_deployment_status

    row = session.query(Platform).filter_by(issuer=platform.issuer).one()
    set_deployment_status(session, row.id, platform.deployment_id, status)
    session.commit()


def test_revoked_deployment_is_refused_although_this_worker_cached_its_approval(client, session, canvas, engine, redis):
    """Revoking takes effect on the next launch in every worker: the launch's write re-reads the status."""
    from classroom.models import DeploymentStatus

    for n, user in enumerate((canvas.user("instructor", 1), canvas.user("student", 2))):  # owner path, one statement
        assert launch(client, canvas, canvas.user("student", 10 + n)).status_code == 303  # approval now cached
        _set_status(session, canvas, DeploymentStatus.REVOKED)  # as the CLI would, from another process
        sessions = len(list(redis.scan_iter("cwc:lti:launch:*")))
        resp = launch(client, canvas, user)
        _rejected(resp, 403)
        assert b"not approved any more" in resp.data
        assert len(list(redis.scan_iter("cwc:lti:launch:*"))) == sessions  # no launch (session) data
        _rejected(launch(client, canvas, user), 403)  # the cache entry is gone: refused by the validation now
        _set_status(session, canvas, DeploymentStatus.APPROVED)  # approval works at once: refusals are not cached
    assert count_rows(engine, "people") == 2 and count_rows(engine, "enrollments") == 2  # students 10 and 11
    assert launch(client, canvas, canvas.user("student", 2)).status_code == 303


def test_first_launch_of_a_new_deployment_on_an_accepting_platform_goes_through(client, session, platform, engine):
    """Issue 13: the platform accepts new deployments, so the very first launch works (not "Waiting for approval")."""
    from classroom.models import Platform

    platform_id = register(session, platform, approve=False)
    session.get(Platform, platform_id).accept_new_deployments = True
    session.commit()
    resp = launch(client, platform, platform.user("instructor"))
    assert resp.status_code == 303, resp.data[:300]
    with engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT status::text FROM deployments")).scalar_one() == "approved"
        assert conn.execute(text("SELECT count(*) FROM enrollments")).scalar_one() == 1
