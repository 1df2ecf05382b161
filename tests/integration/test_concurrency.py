"""Concurrent launches on real PostgreSQL: one owner per course, one person per sub, an unbroken audit chain."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, text

from classroom.audit import verify_chain
from classroom.claims import parse_claims
from classroom.db import make_session_factory
from classroom.models import Deployment, Enrollment
from classroom.roles import StaffLevel
from classroom.services.launches import LaunchTarget, record_launch
from classroom.services.platforms import PlatformInput, record_deployment, register_platform

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


def _claims(sub: str, role: str) -> dict[str, object]:
    return {
        "sub": sub,
        LTI + "roles": [LIS + f"membership#{role}"],
        LTI + "context": {"id": "cs229"},
        LTI + "message_type": "LtiResourceLinkRequest",
        LTI + "deployment_id": "d1",
    }


def test_twenty_simultaneous_first_launches(engine, session):
    platform = register_platform(
        session,
        PlatformInput(
            issuer="https://lms.example",
            client_id="c",
            auth_login_url="https://lms.example/auth",
            auth_token_url="https://lms.example/token",
            key_set_url="https://lms.example/jwks",
            accept_new_deployments=True,
        ),
    )
    record_deployment(session, platform, "d1")
    session.commit()
    factory = make_session_factory(engine)

    def one(n: int) -> StaffLevel:
        with factory() as s:
            dep = s.scalar(select(Deployment))
            assert dep is not None
            target = LaunchTarget(platform.id, dep.id, dep.deployment_id)
            sub = f"user-{n % 10}"  # each person launches twice at once
            role = "Instructor" if n % 10 < 3 else "Learner"  # three instructors race for ownership
            result = record_launch(s, target, parse_claims(_claims(sub, role)))
            s.commit()
            return result.level

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = [f.exception() for f in [pool.submit(one, n) for n in range(20)]]
    assert errors == [None] * 20
    levels = [e.level for e in session.scalars(select(Enrollment))]
    assert levels.count(StaffLevel.OWNER) == 1 and levels.count(StaffLevel.TA) == 2  # the others start read-only
    assert len(levels) == 10
    assert verify_chain(session).ok


def test_a_launch_that_audits_commits_synchronously_and_a_returning_one_may_not(engine, session):
    platform = register_platform(
        session,
        PlatformInput(
            issuer="https://lms.example",
            client_id="c",
            auth_login_url="https://lms.example/auth",
            auth_token_url="https://lms.example/token",
            key_set_url="https://lms.example/jwks",
            accept_new_deployments=True,
        ),
    )
    dep = record_deployment(session, platform, "d1")
    session.commit()
    target = LaunchTarget(platform.id, dep.id, dep.deployment_id)
    modes = []
    for sub, role in (("s1", "Learner"), ("s1", "Learner"), ("i1", "Instructor"), ("i1", "Instructor")):
        with make_session_factory(engine)() as s:
            record_launch(s, target, parse_claims(_claims(sub, role)))
            modes.append(s.scalar(text("SHOW synchronous_commit")))
            s.commit()
    assert modes == ["on", "off", "on", "off"]  # joined (audited) / returning, for a student and an instructor
