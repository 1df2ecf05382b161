"""Issue 13: dev-only surfaces (/dev/mail, the Demo LMS) share one guard: setting, loopback bind, loopback client."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from classroom.models import OutboxEmail
from config.settings import Settings
from lti_app import create_app

DEV_PREFIXES = ("/dev/", "/demo-lms")


def _dev_rules(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.rule for r in app.url_map.iter_rules() if r.rule.startswith(DEV_PREFIXES)]


def _queue_mail(session: Session) -> None:
    session.add(OutboxEmail(to_address="emily@u.edu", subject="Secret grade news", body="B+"))
    session.commit()


@pytest.mark.parametrize(
    "overrides",
    [
        {"env": "production", "base_url": "https://tool.example"},
        {"env": "development", "bind_host": "0.0.0.0"},
    ],
    ids=["production", "public-bind"],
)
def test_dev_surfaces_are_absent_from_the_url_map(settings: Settings, session: Session, overrides) -> None:  # type: ignore[no-untyped-def]
    _queue_mail(session)
    app = create_app(settings.with_(**overrides))
    try:
        assert _dev_rules(app) == []
        for path in ("/dev/mail", "/demo-lms/", "/demo-lms/jwks"):
            resp = app.test_client().get(path)
            assert resp.status_code == 404 and b"Secret grade news" not in resp.data
    finally:
        app.extensions["cwc"].engine.dispose()


def test_dev_mail_refuses_a_client_that_is_not_on_loopback(settings: Settings, session: Session) -> None:
    _queue_mail(session)
    app = create_app(settings.with_(demo_lms=True))
    try:
        assert "/dev/mail" in _dev_rules(app) and "/demo-lms/" in _dev_rules(app)
        client = app.test_client()
        for path in ("/dev/mail", "/demo-lms/"):
            resp = client.get(path, environ_base={"REMOTE_ADDR": "10.1.2.3"})
            assert resp.status_code == 404 and b"Secret grade news" not in resp.data
        assert b"Secret grade news" in client.get("/dev/mail").data  # loopback, development: the page works
    finally:
        app.extensions["cwc"].engine.dispose()
