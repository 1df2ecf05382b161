"""The per-process registry cache: positive answers kept for ttl_s, anything else read again every time."""

from __future__ import annotations

from sqlalchemy import event

from classroom.models import DeploymentStatus
from classroom.services.platforms import remove_platform, set_deployment_status
from lti_app.lti.registry import RegistryCache
from tests.support.lti import register


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _counting(engine):  # type: ignore[no-untyped-def]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def test_a_registered_platform_and_approved_deployment_are_read_once_per_ttl(session, engine, platform):
    pid = register(session, platform)
    clock = Clock()
    cache = RegistryCache(ttl_s=30, clock=clock)
    statements = _counting(engine)
    first = cache.platform(session, platform.issuer, platform.client_id)
    dep = cache.approved_deployment(session, pid, platform.deployment_id)
    assert first is not None and first.id == pid and dep is not None and dep.platform_id == pid
    read = len(statements)
    for _ in range(5):
        assert cache.platform(session, platform.issuer, platform.client_id) == first
        assert cache.approved_deployment(session, pid, platform.deployment_id) == dep
    assert len(statements) == read  # served from memory
    clock.now += 31
    assert cache.platform(session, platform.issuer, platform.client_id) == first
    assert len(statements) == read + 1  # re-read after the TTL


def test_unknown_pending_and_revoked_are_never_cached(session, platform):
    cache = RegistryCache(ttl_s=30, clock=Clock())
    assert cache.platform(session, platform.issuer, platform.client_id) is None
    pid = register(session, platform, approve=False)
    assert cache.platform(session, platform.issuer, platform.client_id) is not None  # registered: seen at once
    set_deployment_status(session, pid, platform.deployment_id, DeploymentStatus.PENDING)
    session.commit()
    assert cache.approved_deployment(session, pid, platform.deployment_id) is None
    set_deployment_status(session, pid, platform.deployment_id, DeploymentStatus.APPROVED)
    session.commit()
    assert cache.approved_deployment(session, pid, platform.deployment_id) is not None  # approved: seen at once
    cache.forget_deployment(pid, platform.deployment_id)
    set_deployment_status(session, pid, platform.deployment_id, DeploymentStatus.REVOKED)
    session.commit()
    assert cache.approved_deployment(session, pid, platform.deployment_id) is None
    remove_platform(session, pid)
    session.commit()
    cache.forget()
    assert cache.platform(session, platform.issuer, platform.client_id) is None
