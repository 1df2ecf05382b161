"""Record a validated launch: upsert person, course and enrollment, decide the tool role, audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.claims import LaunchClaims
from classroom.db import utcnow
from classroom.models import Course, Deployment, DeploymentStatus, Enrollment, EnrollmentStatus
from classroom.roles import LtiRole, StaffLevel, is_test_user, level_for_launch, map_lti_roles
from classroom.services.allocation_alerts import check_allocation
from classroom.services.next_term import note_history
from classroom.sql.enrollments import COURSE_UPSERT, MEMBER_LAUNCH, PERSON_UPSERT


class LaunchRefused(PermissionError):
    """The launch was valid but gives no access; the message is shown to the person."""


class DeploymentNoLongerApproved(LaunchRefused):
    """The deployment was revoked or removed after the launch's registration was read."""

    def __init__(self) -> None:
        super().__init__(
            "This course's installation of Cloud Workstation is not approved any more. Ask your LMS administrator."
        )


@dataclass(frozen=True)
class LaunchTarget:
    """Where a validated launch lands: the platform row and the approved deployment it was checked against."""

    platform_id: int
    deployment_pk: int
    deployment_id: str


@dataclass(frozen=True)
class LaunchResult:
    """Who launched, into which course, with which tool level."""

    person_id: int
    course_id: int
    enrollment_id: int
    level: StaffLevel


JOINED = "enrollment.created"


def _person_values(platform_id: int, c: LaunchClaims, now: datetime) -> dict[str, object]:
    return {
        "platform_id": platform_id,
        "sub": c.sub,
        "name": c.name,
        "given_name": c.given_name,
        "family_name": c.family_name,
        "email": c.email,
        "is_test_user": is_test_user(c.roles),
        "now": now,
    }


def _course_values(target: LaunchTarget, c: LaunchClaims) -> dict[str, object]:
    return {
        "deployment_pk": target.deployment_pk,
        "context_id": c.context_id,
        "label": c.context_label,
        "title": c.context_title,
    }


def _joined_details(level: StaffLevel, target: LaunchTarget, c: LaunchClaims) -> dict[str, object]:
    return {"level": level.value, "source": "lti", "deployment": target.deployment_id, "message_type": c.message_type}


def record_launch(session: Session, target: LaunchTarget, claims: LaunchClaims) -> LaunchResult:
    """Apply a validated launch: person, course and enrollment, audited when someone joins or changes level.

    Flushes, never commits. Students and TAs take one statement; instructors also lock the course, since the
    first of them to launch becomes its owner; any later instructor starts as a read-only TA (the owner sets
    levels). A launch never lowers a staff level.
    """
    role = map_lti_roles(claims.roles)
    if level_for_launch(role, None, True) is None:
        raise LaunchRefused(
            "Your role in this course does not give access to Cloud Workstation. "
            "It is for the course's instructors, teaching assistants and students."
        )
    if role is LtiRole.INSTRUCTOR:
        return _instructor_launch(session, target, claims)
    return _member_launch(session, target, claims, role)


def _member_launch(session: Session, target: LaunchTarget, claims: LaunchClaims, role: LtiRole) -> LaunchResult:
    now = utcnow()
    joined_as = level_for_launch(role, None, True)
    assert joined_as is not None
    params = {
        **_person_values(target.platform_id, claims, now),
        **_course_values(target, claims),
        "lti_roles": list(claims.roles),
        "level": joined_as.value,
    }
    row = session.execute(MEMBER_LAUNCH, params).one_or_none()
    if row is None:
        raise DeploymentNoLongerApproved
    if row.created:  # the first launch into the course: one more statement, on the course's own chain
        details = _joined_details(joined_as, target, claims)
        append_event(session, JOINED, actor_person_id=row.person_id, course_id=row.course_id, details=details)
        if joined_as is StaffLevel.STUDENT:  # one more student: is the allocation still within the course total?
            check_allocation(session, row.course_id, now)
    if row.status == EnrollmentStatus.DROPPED.value:
        raise LaunchRefused(DROPPED_MESSAGE)
    stored = StaffLevel(row.level)
    level = level_for_launch(role, stored, True, pinned=row.pinned)
    assert level is not None
    if level is not stored:
        session.execute(update(Enrollment).where(Enrollment.id == row.id).values(level=level))
        _audit_level_change(session, row.person_id, row.course_id, stored, level)
    return LaunchResult(row.person_id, row.course_id, row.id, level)


DROPPED_MESSAGE = "You are no longer enrolled in this course in Cloud Workstation. Ask your instructor."


def _audit_level_change(session: Session, person_id: int, course_id: int, old: StaffLevel, new: StaffLevel) -> None:
    append_event(
        session,
        "enrollment.level_changed",
        actor_person_id=person_id,
        course_id=course_id,
        details={"from": old.value, "to": new.value, "source": "lti"},
    )


def _instructor_launch(session: Session, target: LaunchTarget, claims: LaunchClaims) -> LaunchResult:
    session.execute(text("SET LOCAL synchronous_commit = off"))  # an audit append later turns it back on
    if not session.scalar(
        select(Deployment.id).where(
            Deployment.id == target.deployment_pk, Deployment.status == DeploymentStatus.APPROVED
        )
    ):
        raise DeploymentNoLongerApproved
    now = utcnow()
    person_id = int(session.scalar(PERSON_UPSERT, _person_values(target.platform_id, claims, now)))  # type: ignore[arg-type]
    course_values = {**_course_values(target, claims), "platform_id": target.platform_id, "now": now}
    course_id = int(session.scalar(COURSE_UPSERT, course_values))  # type: ignore[arg-type]
    note_history(session, course_id, claims.custom)  # Canvas course copy: where next term's set-up may come from
    # Lock the course row: two instructors launching at once must not both become owner (FOR NO KEY UPDATE, so
    # Starts inserting workspaces of the course, which take a key-share lock on this row, do not wait for it).
    session.execute(select(Course.id).where(Course.id == course_id).with_for_update(key_share=True))
    enrollment = session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.person_id == person_id)
    )
    if enrollment is not None and enrollment.status is EnrollmentStatus.DROPPED:
        raise LaunchRefused(DROPPED_MESSAGE)
    has_owner = (
        session.scalar(
            select(Enrollment.id)
            .where(Enrollment.course_id == course_id, Enrollment.level == StaffLevel.OWNER)
            .limit(1)
        )
        is not None
    )
    level = level_for_launch(
        LtiRole.INSTRUCTOR,
        enrollment.level if enrollment else None,
        has_owner,
        pinned=enrollment.level_pinned if enrollment else False,
    )
    assert level is not None
    if enrollment is None:
        enrollment = Enrollment(
            course_id=course_id, person_id=person_id, lti_roles=list(claims.roles), level=level, last_launch_at=now
        )
        session.add(enrollment)
        session.flush()
        append_event(
            session,
            JOINED,
            actor_person_id=person_id,
            course_id=course_id,
            details=_joined_details(level, target, claims),
        )
    else:
        enrollment.lti_roles, enrollment.last_launch_at = list(claims.roles), now
        if enrollment.level is not level:
            old, enrollment.level = enrollment.level, level
            _audit_level_change(session, person_id, course_id, old, level)  # flushes the enrollment first
        session.flush()
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
    target.level_pinned = True  # the owner's choice: no later launch or sync changes it
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
