"""Staff levels are the course owner's decision: the staff list with the LMS's roles, and the owner's level changes.

The LMS role only decides who may be staff (classroom.roles.level_for_launch); which level a staff member has is
set here by the owner, audited, and pinned so that no later launch or roster sync changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.models import Enrollment, EnrollmentStatus, Person
from classroom.roles import LtiRole, StaffLevel, is_staff, is_staff_role, map_lti_roles, role_label

# What the owner may give; OWNER is never given or taken here (the first instructor to launch holds it).
ASSIGNABLE = (StaffLevel.INSTRUCTOR, StaffLevel.HEAD_TA, StaffLevel.TA, StaffLevel.STUDENT)
ASSIGNABLE_LABELS = {
    StaffLevel.INSTRUCTOR: "Co-instructor (configures the course)",
    StaffLevel.HEAD_TA: "Head TA (acts on student workspaces)",
    StaffLevel.TA: "TA (read-only)",
    StaffLevel.STUDENT: "Not staff (a student)",
}


class StaffChangeRefused(PermissionError):
    """The level change is not allowed; the message is shown to the owner."""


@dataclass(frozen=True)
class StaffRow:
    """One staff member (or someone the LMS called staff) as the owner's staff page shows them."""

    enrollment_id: int
    name: str
    email: str
    level: StaffLevel
    pinned: bool
    active: bool
    launch_roles: tuple[str, ...]
    nrps_roles: tuple[str, ...]

    @property
    def launch_labels(self) -> list[str]:
        """The launch roles, readable."""
        return [role_label(r) for r in self.launch_roles]

    @property
    def nrps_labels(self) -> list[str]:
        """The roster (NRPS) roles, readable."""
        return [role_label(r) for r in self.nrps_roles]

    @property
    def lms_disagrees(self) -> bool:
        """Staff whom the LMS roster lists as a student (Moodle's non-editing teachers): kept as staff, reported."""
        return is_staff(self.level) and map_lti_roles(self.nrps_roles) is LtiRole.STUDENT


def seen_as_staff(level: StaffLevel, pinned: bool, launch_roles: Sequence[str], nrps_roles: Sequence[str]) -> bool:
    """Whether the owner's staff page lists this member: staff now, set by the owner, or called staff by the LMS."""
    return (
        is_staff(level)
        or pinned
        or is_staff_role(map_lti_roles(launch_roles))
        or is_staff_role(map_lti_roles(nrps_roles))
    )


def staff_rows(session: Session, course_id: int) -> list[StaffRow]:
    """Every staff member of the course, owner first, with the roles the LMS sent at launch and in its roster."""
    rows = session.execute(
        select(Enrollment, Person)
        .join(Person, Person.id == Enrollment.person_id)
        .where(Enrollment.course_id == course_id)
        .order_by(Enrollment.level, Person.family_name, Person.name, Enrollment.id)
    ).all()
    return [
        StaffRow(
            e.id,
            p.display_name,
            p.email,
            e.level,
            e.level_pinned,
            e.status is EnrollmentStatus.ACTIVE,
            tuple(e.lti_roles or ()),
            tuple(e.nrps_roles or ()),
        )
        for e, p in rows
        if seen_as_staff(e.level, e.level_pinned, e.lti_roles or (), e.nrps_roles or ())
    ]


def set_staff_level(
    session: Session, course_id: int, owner_person_id: int, enrollment_id: int, level: StaffLevel
) -> Enrollment:
    """The owner sets a member's level (pinned from now on); audited when it changes. Flushes, never commits."""
    owner = session.scalar(
        select(Enrollment).where(Enrollment.course_id == course_id, Enrollment.person_id == owner_person_id)
    )
    if owner is None or owner.level is not StaffLevel.OWNER:
        raise StaffChangeRefused("Only the course owner sets staff levels.")
    if level not in ASSIGNABLE:
        raise StaffChangeRefused("Choose co-instructor, head TA, TA or not staff.")
    target = session.get(Enrollment, enrollment_id, with_for_update=True)
    if target is None or target.course_id != course_id or target.level is StaffLevel.OWNER:
        raise StaffChangeRefused("Choose a staff member of this course other than its owner.")
    if not seen_as_staff(target.level, target.level_pinned, target.lti_roles or (), target.nrps_roles or ()):
        raise StaffChangeRefused("The LMS has never listed this person as teaching staff in this course.")
    before, was_pinned = target.level, target.level_pinned
    target.level, target.level_pinned = level, True
    session.flush()
    if before is not level or not was_pinned:
        append_event(
            session,
            "enrollment.level_set",
            actor_person_id=owner_person_id,
            course_id=course_id,
            subject=str(target.person_id),
            details={"from": before.value, "to": level.value, "source": "owner"},
        )
    return target
