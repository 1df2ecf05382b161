"""LMS sync fixtures: a real LTI Advantage platform over HTTP, a course registered against it, and an LMS job
context on the test's own PostgreSQL database and Redis (jobs run by a burst SimpleWorker)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from redis import Redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from classroom.db import make_session_factory
from classroom.jobs.context import use_context
from classroom.jobs.queue import make_worker
from classroom.models import Course, CourseLms, Deployment, DeploymentStatus, Enrollment, Person, Platform, StaffLevel
from classroom.services.keys import current_signing_key
from config.settings import Settings
from lms_sync.context import LmsContext
from lms_sync.http import RetryPolicy
from lms_sync.lti_adapter import AGS_SCOPES
from tests.lms_sync.support.lms_platform import LmsPlatform

FAST = RetryPolicy(max_attempts=6, base_s=0.01, cap_s=0.05, max_retry_after_s=30)


def public_pem(private_pem: str) -> str:
    """The public half of the tool's key. The key was made and checked by this run; checking it again on every
    parse (RSA's consistency check) cost 50-100 ms of CPU a test."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class CourseSetup:
    """The tool-side rows of a course on the test platform."""

    platform_id: int
    course_id: int
    owner_id: int


@pytest.fixture
def lms(session: Session) -> Iterator[LmsPlatform]:
    """The platform, trusting the tool's current signing key."""
    key = current_signing_key(session)
    session.commit()
    platform = LmsPlatform(tool_public_pem=public_pem(key.private_pem)).serve()
    yield platform
    platform.stop()


def make_course_on(
    session: Session, lms: LmsPlatform, *, owner_sub: str = "instructor-1", nrps: bool = True, ags: bool = True
) -> CourseSetup:
    """Register the platform, approve its deployment, and create the course with its owner (as a launch would)."""
    platform = Platform(
        issuer=lms.issuer,
        client_id=lms.client_id,
        name="canvas",
        product="canvas",
        auth_login_url=f"{lms.base_url}/auth",
        auth_token_url=f"{lms.base_url}/token",
        key_set_url=f"{lms.base_url}/jwks",
        frame_origins=[],
    )
    session.add(platform)
    session.flush()
    deployment = Deployment(platform_id=platform.id, deployment_id=lms.deployment_id, status=DeploymentStatus.APPROVED)
    session.add(deployment)
    session.flush()
    course = Course(
        platform_id=platform.id,
        deployment_id=deployment.id,
        context_id=lms.context_id,
        label="CS 229",
        title="Machine Learning (Fall 2024)",
    )
    session.add(course)
    session.flush()
    owner = Person(platform_id=platform.id, sub=owner_sub, name="Jennifer Martinez", email="jennifer.martinez@u.edu")
    session.add(owner)
    session.flush()
    session.add(Enrollment(course_id=course.id, person_id=owner.id, lti_roles=[], level=StaffLevel.OWNER))
    session.add(
        CourseLms(
            course_id=course.id,
            nrps_url=lms.nrps_url if nrps else "",
            ags_lineitems_url=lms.lineitems_url if ags else "",
            ags_scopes=list(AGS_SCOPES),
            canvas_course_id="",
            usage_passback=False,
        )
    )
    session.commit()
    return CourseSetup(platform.id, course.id, owner.id)


@pytest.fixture
def course(session: Session, lms: LmsPlatform) -> CourseSetup:
    lms.add("instructor-1", "instructor", name="Jennifer Martinez")
    return make_course_on(session, lms)


@pytest.fixture
def lms_ctx(settings: Settings, engine: Engine, redis: Redis) -> Iterator[LmsContext]:
    """Jobs run in-process on the test's database and Redis, with fast backoff."""
    ctx = LmsContext(settings, make_session_factory(engine), redis, policy=FAST, sleep=time.sleep)
    use_context(ctx)
    yield ctx
    use_context(None)


def run_jobs(redis: Redis) -> None:
    """Run every queued job (and the ones they queue) in this process."""
    make_worker(redis, simple=True).work(burst=True)
