"""Our signing keys rotate with a grace period; platform keys are cached and refetched once on a new kid."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import KeyStatus, ToolKey
from classroom.services.keys import ensure_keys, published_jwks, rotate_keys
from tests.support.lti import launch, login, post_launch, register


def test_jwks_publishes_current_and_next_keys(client, session):
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    statuses = {k.kid: k.status for k in session.scalars(select(ToolKey))}
    assert len(keys) == 2 and {statuses[k["kid"]] for k in keys} == {KeyStatus.CURRENT, KeyStatus.NEXT}
    assert all(k["alg"] == "RS256" and k["use"] == "sig" and "d" not in k for k in keys)


def test_rotation_promotes_next_and_keeps_retired_key_for_grace_period(client, session):
    before = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    old, new = rotate_keys(session)
    session.commit()
    after = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert new in before  # the platform already had the new current key cached
    assert old in after and new in after and len(after) == 3
    later = published_jwks(session, grace=timedelta(days=7), now=utcnow() + timedelta(days=8))
    assert old not in {k["kid"] for k in later["keys"]}


def test_rotate_cli_rotates(session, database_url, monkeypatch):
    from click.testing import CliRunner

    from classroom.cli import main

    ensure_keys(session)
    session.commit()
    current = session.scalar(select(ToolKey.kid).where(ToolKey.status == KeyStatus.CURRENT))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)
    result = CliRunner().invoke(main, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.scalar(select(ToolKey.status).where(ToolKey.kid == current)) is KeyStatus.RETIRED


def test_platform_jwks_fetched_once_for_many_launches(client, session, platform):
    register(session, platform)
    for n in range(5):
        assert launch(client, platform, platform.user("student", n)).status_code == 303
    assert platform.jwks_fetches == 1


def test_platform_key_rotation_triggers_one_refetch(client, session, platform):
    register(session, platform)
    assert launch(client, platform, platform.user("student", 1)).status_code == 303
    platform.rotate()
    for n in range(2, 5):
        assert launch(client, platform, platform.user("student", n)).status_code == 303
    assert platform.jwks_fetches == 2


def test_unknown_kid_does_not_refetch_on_every_launch(client, session, platform):
    register(session, platform)
    assert launch(client, platform, platform.user("student", 1)).status_code == 303
    for _ in range(3):
        user = platform.user("student", 9)
        started = login(client, platform, user)
        token = platform.sign(platform.claims(user, nonce=started.nonce), kid="kid-nobody-publishes")
        assert post_launch(client, started.state, token).status_code == 401
    assert platform.jwks_fetches == 2  # the first unknown kid refetches once; the rest wait for the interval


def test_concurrent_launches_after_a_key_rotation_all_wait_for_the_one_download(redis):
    """Two requests meet a new kid while the key set downloads slowly: both see the new key, one download."""
    import threading
    import time

    import requests

    from lti_app.lti.jwks_cache import PlatformKeyCache

    calls = {"n": 0}
    new = {"keys": [{"kid": "old"}, {"kid": "new"}]}

    class SlowPlatform(requests.Session):
        def get(self, url, **kwargs):  # type: ignore[no-untyped-def,override]
            calls["n"] += 1
            time.sleep(0.3)
            response = requests.Response()
            response.status_code, response._content = 200, __import__("json").dumps(new).encode()
            return response

    cache = PlatformKeyCache(redis, 3600, http=SlowPlatform())
    redis.set(PlatformKeyCache._key("https://lms/jwks"), '{"keys": [{"kid": "old"}]}')
    found: list[object] = []

    def launch() -> None:
        found.append(cache.get("https://lms/jwks", "new")["kid"])

    threads = [threading.Thread(target=launch) for _ in range(2)]
    threads[0].start()
    time.sleep(0.05)
    threads[1].start()
    for t in threads:
        t.join()
    assert found == ["new", "new"] and calls["n"] == 1
