"""Record a validated launch: upsert person, course and enrollment, decide the tool role, audit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.claims import LaunchClaims
from classroom.db import utcnow
from classroom.models import Course, Deployment, Enrollment, EnrollmentStatus, Platform
from classroom.roles import LtiRole, StaffLevel, is_test_user, level_for_launch, map_lti_roles


class LaunchRefused(PermissionError):
    """The launch was valid but gives no access; the message is shown to the person."""


@dataclass(frozen=True)
class LaunchResult:
    """Who launched, into which course, with which tool level."""

    person_id: int
    course_id: int
    enrollment_id: int
    level: StaffLevel


# The two upserts of every launch as text: SQLAlchemy never caches a PostgreSQL insert() with ON CONFLICT
# (its dialect Insert has inherit_cache = False), and compiling them cost ~1.2 ms a launch.
PERSON_UPSERT = text("""
INSERT INTO people (platform_id, sub, name, given_name, family_name, email, is_test_user, created_at, updated_at)
VALUES (:platform_id, :sub, :name, :given_name, :family_name, :email, :is_test_user, :created_at, :updated_at)
ON CONFLICT ON CONSTRAINT uq_people_platform_sub DO UPDATE
SET name = EXCLUDED.name, given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name,
    email = EXCLUDED.email, is_test_user = EXCLUDED.is_test_user, updated_at = EXCLUDED.updated_at
RETURNING id
""")
COURSE_UPSERT = text("""
INSERT INTO courses (platform_id, deployment_id, context_id, label, title, time_zone, created_at)
VALUES (:platform_id, :deployment_id, :context_id, :label, :title, :time_zone, :created_at)
ON CONFLICT ON CONSTRAINT uq_courses_platform_context DO UPDATE SET label = EXCLUDED.label, title = EXCLUDED.title
RETURNING id
""")


def _upsert_person(session: Session, platform: Platform, c: LaunchClaims) -> int:
    now = utcnow()
    values = {
        "platform_id": platform.id,
        "sub": c.sub,
        "name": c.name,
        "given_name": c.given_name,
        "family_name": c.family_name,
        "email": c.email,
        "is_test_user": is_test_user(c.roles),
        "created_at": now,
        "updated_at": now,
    }
    return int(session.scalar(PERSON_UPSERT, values))  # type: ignore[arg-type]


def _upsert_course(session: Session, platform: Platform, deployment: Deployment, c: LaunchClaims) -> int:
    values = {
        "platform_id": platform.id,
        "deployment_id": deployment.id,
        "context_id": c.context_id,
        "label": c.context_label,
        "title": c.context_title,
        "time_zone": "UTC",
        "created_at": utcnow(),
    }
    return int(session.scalar(COURSE_UPSERT, values))  # type: ignore[arg-type]


def record_launch(session: Session, platform: Platform, deployment: Deployment, claims: LaunchClaims) -> LaunchResult:
    """Apply a validated launch to the database (flushes; the caller commits)."""
    role = map_lti_roles(claims.roles)
    if level_for_launch(role, None, True) is None:
        raise LaunchRefused(
            "Your role in this course does not give access to Cloud Workstation. "
            "It is for the course's instructors, teaching assistants and students."
        )
    person_id = _upsert_person(session, platform, claims)
    course_id = _upsert_course(session, platform, deployment, claims)
    # Lock the course row: two instructors launching at once must not both become owner.
    session.execute(select(Course.id).where(Course.id == course_id).with_for_update())
    enrollment = session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.person_id == person_id)
    )
    has_owner = role is not LtiRole.INSTRUCTOR or (  # only an instructor's launch can decide ownership
        session.scalar(
            select(Enrollment.id)
            .where(Enrollment.course_id == course_id, Enrollment.level == StaffLevel.OWNER)
            .limit(1)
        )
        is not None
    )
    if enrollment is not None and enrollment.status is EnrollmentStatus.DROPPED:
        raise LaunchRefused("You are no longer enrolled in this course in Cloud Workstation. Ask your instructor.")
    level = level_for_launch(role, enrollment.level if enrollment else None, has_owner)
    assert level is not None
    now = utcnow()
    if enrollment is None:
        enrollment = Enrollment(
            course_id=course_id, person_id=person_id, lti_roles=list(claims.roles), level=level, last_launch_at=now
        )
        session.add(enrollment)
    else:
        enrollment.lti_roles, enrollment.last_launch_at = list(claims.roles), now
        if enrollment.level is not level:
            append_event(
                session,
                "enrollment.level_changed",
                actor_person_id=person_id,
                course_id=course_id,
                details={"from": enrollment.level.value, "to": level.value, "source": "lti"},
            )
            enrollment.level = level
    session.flush()
    append_event(
        session,
        "lti.launch",
        actor_person_id=person_id,
        course_id=course_id,
        subject=claims.resource_link_id or claims.message_type,
        details={"level": level.value, "message_type": claims.message_type, "deployment": deployment.deployment_id},
    )
    return LaunchResult(person_id, course_id, enrollment.id, level)


def promote_head_ta(session: Session, course_id: int, owner_person_id: int, enrollment_id: int) -> Enrollment:
    """Make a TA the course's head TA (owner only); returns the changed enrollment."""
    owner = session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.person_id == owner_person_id)
    )
    if owner is None or owner.level is not StaffLevel.OWNER:
        raise LaunchRefused("Only the course owner can choose the head TA.")
    target = session.get(Enrollment, enrollment_id)
    if target is None or target.course_id != course_id or target.level not in (StaffLevel.TA, StaffLevel.HEAD_TA):
        raise LaunchRefused("Only a teaching assistant of this course can be made head TA.")
    if target.level is not StaffLevel.HEAD_TA:
        target.level = StaffLevel.HEAD_TA
        session.flush()
        append_event(
            session,
            "enrollment.promoted",
            actor_person_id=owner_person_id,
            course_id=course_id,
            subject=str(target.person_id),
            details={"to": StaffLevel.HEAD_TA.value},
        )
    return target
