"""Map LTI roles, in every form LMSs send them, to the tool's role. Pure functions, no I/O.

Only context (membership) roles grant course rights. Institution and system roles are hints:
Canvas sends `institution/person#Instructor` to people who are students in this course.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
TEST_USER = LIS + "system/person#TestUser"


class LtiRole(enum.StrEnum):
    """What the LMS says a person is in this course, reduced to what the tool needs."""

    INSTRUCTOR = "instructor"
    TA = "ta"
    STUDENT = "student"
    NONE = "none"  # no course role we accept (observer/mentor, institution-only, empty)


@dataclass(frozen=True)
class ParsedRole:
    """One role string split into its kind (membership/institution/system/None) and name."""

    kind: str | None
    name: str
    sub_role: str | None = None


_CONTEXT_SHORT = {
    "instructor",
    "learner",
    "teachingassistant",
    "contentdeveloper",
    "mentor",
    "administrator",
    "member",
    "manager",
}


def parse_role(role: str) -> ParsedRole:
    """Parse a full LIS v2 URI, an LTI 1.1 URN or a short name into its parts."""
    raw = role.strip()
    low = raw.lower()
    if low.startswith(LIS):
        rest = raw[len(LIS) :]
        path, _, fragment = rest.partition("#")
        parts = path.split("/")
        kind = parts[0].lower()
        if kind == "membership":
            if len(parts) > 1:  # membership/Instructor#TeachingAssistant
                return ParsedRole("membership", parts[1].lower(), fragment.lower() or None)
            return ParsedRole("membership", fragment.lower())
        if kind in {"institution", "system"}:
            return ParsedRole(kind, fragment.lower())
        return ParsedRole(None, fragment.lower() or path.lower())
    if low.startswith("urn:lti:role:ims/lis/"):  # LTI 1.1 context role, still sent by some LMSs
        name, _, sub = low[len("urn:lti:role:ims/lis/") :].partition("/")
        return ParsedRole("membership", name, sub or None)
    if low.startswith(("urn:lti:instrole:", "urn:lti:sysrole:")):
        kind = "institution" if "instrole" in low else "system"
        return ParsedRole(kind, low.rsplit("/", 1)[-1])
    if low in _CONTEXT_SHORT:  # the spec allows short names for context roles
        return ParsedRole("membership", low)
    return ParsedRole(None, low)


def _is_ta(role: ParsedRole) -> bool:
    return role.name == "teachingassistant" or role.sub_role == "teachingassistant"


def map_lti_roles(roles: Iterable[str]) -> LtiRole:
    """Return the tool role for a launch's roles claim; TA wins over Instructor (Canvas sends both)."""
    context = [r for r in map(parse_role, roles) if r.kind == "membership"]
    if any(_is_ta(r) for r in context):
        return LtiRole.TA
    if any(r.name in {"instructor", "administrator"} for r in context):
        return LtiRole.INSTRUCTOR
    if any(r.name == "contentdeveloper" for r in context):
        return LtiRole.TA  # course designers may look, not act
    if any(r.name in {"learner", "member"} for r in context):
        return LtiRole.STUDENT
    return LtiRole.NONE


def is_test_user(roles: Iterable[str]) -> bool:
    """True for the LMS's "student view" test user (Canvas `system/person#TestUser`)."""
    return any(r.strip().lower() == TEST_USER.lower() for r in roles)


def role_label(role: str) -> str:
    """A short readable form of one role string for staff pages ("Instructor", "Institution: Faculty")."""
    parsed = parse_role(role)
    raw = role.strip()
    name = raw.rsplit("#", 1)[-1] if "#" in raw else raw.rsplit("/", 1)[-1]
    if parsed.kind == "membership":
        if parsed.sub_role:
            return f"{raw.split('/membership/', 1)[-1].split('#', 1)[0]} / {name}" if "/membership/" in raw else name
        return name
    if parsed.kind in ("institution", "system"):
        return f"{parsed.kind.capitalize()}: {name}"
    return name


class StaffLevel(enum.StrEnum):
    """The tool's own level for a course member (from most to least rights)."""

    OWNER = "owner"
    INSTRUCTOR = "instructor"
    HEAD_TA = "head_ta"
    TA = "ta"
    STUDENT = "student"


STAFF_LEVELS = frozenset({StaffLevel.OWNER, StaffLevel.INSTRUCTOR, StaffLevel.HEAD_TA, StaffLevel.TA})
ACTING_LEVELS = frozenset({StaffLevel.OWNER, StaffLevel.INSTRUCTOR, StaffLevel.HEAD_TA})
CONFIGURING_LEVELS = frozenset({StaffLevel.OWNER, StaffLevel.INSTRUCTOR})


def is_staff_role(role: LtiRole) -> bool:
    """The LMS says this person teaches: they may be given a staff level (which one is the owner's decision)."""
    return role in (LtiRole.INSTRUCTOR, LtiRole.TA)


def level_for_launch(
    role: LtiRole, current: StaffLevel | None, course_has_owner: bool, *, pinned: bool = False
) -> StaffLevel | None:
    """Decide a member's level from an LMS role (a launch or a roster entry). None means "no access".

    The LMS role only says staff or student; the level is the owner's. The first instructor becomes owner; any
    other newcomer the LMS calls staff starts as a read-only TA. Staff stay staff whatever the LMS says later
    (Moodle lists its non-editing teachers as Learner in NRPS, Canvas may drop a sub-role), and a level the owner
    set (`pinned`) is kept, until the owner changes it. A role that gives no access at all still gives none.
    """
    if role is LtiRole.NONE:
        return None
    if pinned and current is not None:
        return current
    if role is LtiRole.INSTRUCTOR and not course_has_owner and current in (None, StaffLevel.STUDENT, StaffLevel.TA):
        return StaffLevel.OWNER
    if current is not None and is_staff(current):
        return current
    return StaffLevel.TA if is_staff_role(role) else StaffLevel.STUDENT


def is_staff(level: StaffLevel) -> bool:
    """Staff see every student of the course."""
    return level in STAFF_LEVELS


def can_act(level: StaffLevel) -> bool:
    """Staff who may change a student's workspace (owner, instructors, head TA); TAs are read-only."""
    return level in ACTING_LEVELS


def can_configure(level: StaffLevel) -> bool:
    """Course set-up and staff promotion."""
    return level in CONFIGURING_LEVELS
