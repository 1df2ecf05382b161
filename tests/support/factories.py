"""Small factories for rows tests need: make_course(session, **overrides), make_person(...), make_enrollment(...)."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from classroom.models import Course, Deployment, DeploymentStatus, Enrollment, Person, Platform
from classroom.roles import StaffLevel

_n = itertools.count(1)


def make_platform(session: Session, **overrides: object) -> Platform:
    n = next(_n)
    values: dict[str, object] = dict(
        issuer=f"https://lms{n}.example",
        client_id=f"client-{n}",
        auth_login_url=f"https://lms{n}.example/auth",
        auth_token_url=f"https://lms{n}.example/token",
        key_set_url=f"https://lms{n}.example/jwks",
        frame_origins=[],
    )
    values.update(overrides)
    platform = Platform(**values)
    session.add(platform)
    session.flush()
    return platform


def make_course(session: Session, **overrides: object) -> Course:
    platform = overrides.pop("platform", None) or make_platform(session)
    dep = Deployment(platform_id=platform.id, deployment_id=f"dep-{next(_n)}", status=DeploymentStatus.APPROVED)
    session.add(dep)
    session.flush()
    values: dict[str, object] = dict(
        platform_id=platform.id,
        deployment_id=dep.id,
        context_id=f"ctx-{next(_n)}",
        label="CS 229",
        title="Machine Learning (Fall 2024)",
    )
    values.update(overrides)
    course = Course(**values)
    session.add(course)
    session.flush()
    return course


def make_person(
    session: Session,
    course: Course,
    *,
    level: StaffLevel = StaffLevel.STUDENT,
    name: str = "Emily Chen",
    **overrides: object,
) -> Person:
    n = next(_n)
    values: dict[str, object] = dict(
        platform_id=course.platform_id, sub=f"user-{n}", name=name, email=f"{name.split()[0].lower()}{n}@university.edu"
    )
    values.update(overrides)
    person = Person(**values)
    session.add(person)
    session.flush()
    session.add(Enrollment(course_id=course.id, person_id=person.id, lti_roles=[], level=level))
    session.flush()
    return person
