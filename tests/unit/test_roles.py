"""Role mapping from every form LMSs send, and the tool's staff levels."""

from __future__ import annotations

import pytest

from classroom.roles import LtiRole, StaffLevel, can_act, can_configure, is_test_user, level_for_launch, map_lti_roles

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([LIS + "membership#Instructor"], LtiRole.INSTRUCTOR),
        ([LIS + "membership#Learner"], LtiRole.STUDENT),
        ([LIS + "membership#Member"], LtiRole.STUDENT),
        (["Instructor"], LtiRole.INSTRUCTOR),
        (["Learner"], LtiRole.STUDENT),
        (["TeachingAssistant"], LtiRole.TA),
        # Canvas sends a TA as the sub-role plus plain Instructor: TA must win
        ([LIS + "membership/Instructor#TeachingAssistant", LIS + "membership#Instructor"], LtiRole.TA),
        ([LIS + "membership/instructor#TeachingAssistant"], LtiRole.TA),  # lower case, as Canvas does
        ([LIS + "membership#TeachingAssistant"], LtiRole.TA),
        ([LIS + "membership#Administrator"], LtiRole.INSTRUCTOR),
        ([LIS + "membership#ContentDeveloper"], LtiRole.TA),
        (["urn:lti:role:ims/lis/Instructor"], LtiRole.INSTRUCTOR),
        (["urn:lti:role:ims/lis/TeachingAssistant"], LtiRole.TA),
        (["urn:lti:role:ims/lis/Learner"], LtiRole.STUDENT),
        # institution and system roles alone grant nothing
        ([LIS + "institution/person#Instructor"], LtiRole.NONE),
        ([LIS + "institution/person#Faculty", LIS + "system/person#SysAdmin"], LtiRole.NONE),
        (["urn:lti:instrole:ims/lis/Administrator"], LtiRole.NONE),
        # a Canvas student who is faculty elsewhere stays a student here
        ([LIS + "institution/person#Instructor", LIS + "membership#Learner"], LtiRole.STUDENT),
        ([LIS + "membership#Mentor"], LtiRole.NONE),
        ([], LtiRole.NONE),
        (["  " + LIS + "membership#Learner "], LtiRole.STUDENT),
    ],
)
def test_map_lti_roles(roles: list[str], expected: LtiRole) -> None:
    assert map_lti_roles(roles) is expected


def test_test_user_is_recognised() -> None:
    assert is_test_user([LIS + "system/person#TestUser", LIS + "membership#Learner"])
    assert not is_test_user([LIS + "membership#Learner"])


@pytest.mark.parametrize(
    ("role", "current", "has_owner", "expected"),
    [
        (LtiRole.INSTRUCTOR, None, False, StaffLevel.OWNER),  # the first instructor owns the course
        (LtiRole.INSTRUCTOR, None, True, StaffLevel.TA),  # any other starts read-only until the owner raises them
        (LtiRole.INSTRUCTOR, StaffLevel.OWNER, True, StaffLevel.OWNER),
        (LtiRole.INSTRUCTOR, StaffLevel.TA, True, StaffLevel.TA),  # the LMS role never raises a level
        (LtiRole.INSTRUCTOR, StaffLevel.INSTRUCTOR, True, StaffLevel.INSTRUCTOR),
        (LtiRole.INSTRUCTOR, StaffLevel.STUDENT, True, StaffLevel.TA),  # now listed as staff: lowest staff level
        (LtiRole.TA, None, True, StaffLevel.TA),
        (LtiRole.TA, StaffLevel.HEAD_TA, True, StaffLevel.HEAD_TA),
        (LtiRole.TA, StaffLevel.OWNER, True, StaffLevel.OWNER),  # the owner is the owner's to change
        (LtiRole.STUDENT, StaffLevel.HEAD_TA, True, StaffLevel.HEAD_TA),  # a Learner entry never demotes staff
        (LtiRole.STUDENT, StaffLevel.TA, True, StaffLevel.TA),
        (LtiRole.STUDENT, None, True, StaffLevel.STUDENT),
        (LtiRole.STUDENT, None, False, StaffLevel.STUDENT),
        (LtiRole.NONE, StaffLevel.STUDENT, True, None),
        (LtiRole.NONE, StaffLevel.HEAD_TA, True, None),  # no course role at all still gives no access
    ],
)
def test_level_for_launch(role, current, has_owner, expected) -> None:  # type: ignore[no-untyped-def]
    assert level_for_launch(role, current, has_owner) is expected


@pytest.mark.parametrize(
    ("role", "pinned_level"),
    [
        (LtiRole.INSTRUCTOR, StaffLevel.STUDENT),  # the owner said "not staff": a launch as Instructor keeps that
        (LtiRole.STUDENT, StaffLevel.INSTRUCTOR),
        (LtiRole.TA, StaffLevel.HEAD_TA),
        (LtiRole.INSTRUCTOR, StaffLevel.TA),
    ],
)
def test_a_level_the_owner_pinned_is_kept_whatever_the_lms_says(role, pinned_level) -> None:  # type: ignore[no-untyped-def]
    assert level_for_launch(role, pinned_level, True, pinned=True) is pinned_level
    assert level_for_launch(LtiRole.NONE, pinned_level, True, pinned=True) is None


def _levels_over(course_has_owner: bool, launches: list[list[str]]) -> list[StaffLevel | None]:
    """Levels after each LMS signal in turn (launch or roster entry), as the launch and the sync apply them."""
    level: StaffLevel | None = None
    seen = []
    for roles in launches:
        level = level_for_launch(map_lti_roles(roles), level, course_has_owner)
        seen.append(level)
    return seen


M = LIS + "membership#"
INST = LIS + "institution/person#"


def test_moodle_pattern_a_non_editing_teacher_launches_as_instructor_and_is_a_learner_in_nrps() -> None:
    # launch: Instructor; NRPS: Learner; TeachingAssistant never appears. They stay a read-only TA throughout.
    assert (
        _levels_over(True, [[M + "Instructor"], [M + "Learner"], [M + "Instructor"], [M + "Learner"]])
        == [StaffLevel.TA] * 4
    )
    # seen first in NRPS (as Learner), then launching: becomes staff at the lowest level, never back to student
    assert _levels_over(True, [[M + "Learner"], [M + "Instructor"], [M + "Learner"]]) == [
        StaffLevel.STUDENT,
        StaffLevel.TA,
        StaffLevel.TA,
    ]


def test_canvas_pattern_ta_sub_role_and_an_instructor_with_institution_roles() -> None:
    canvas_ta = [LIS + "membership/instructor#TeachingAssistant", M + "Instructor", INST + "Student"]
    assert _levels_over(True, [canvas_ta, [M + "Instructor"], canvas_ta]) == [StaffLevel.TA] * 3
    # a Canvas student who is faculty elsewhere is a student here
    assert _levels_over(True, [[INST + "Instructor", M + "Learner"]]) == [StaffLevel.STUDENT]
    assert _levels_over(False, [[M + "Instructor", INST + "Instructor"]]) == [StaffLevel.OWNER]


def test_blackboard_pattern_course_roles_with_institution_roles_beside_them() -> None:
    bb_ta = [M + "TeachingAssistant", INST + "Staff", LIS + "system/person#User"]
    bb_student = [M + "Learner", INST + "Student", LIS + "system/person#User"]
    assert _levels_over(True, [bb_ta, bb_student]) == [StaffLevel.TA, StaffLevel.TA]
    assert _levels_over(True, [bb_student]) == [StaffLevel.STUDENT]
    assert _levels_over(True, [[INST + "Faculty", LIS + "system/person#Administrator"]]) == [None]


def test_d2l_pattern_instructor_learner_and_an_administrator_without_a_course_role() -> None:
    d2l_teacher = [M + "Instructor", INST + "Instructor"]
    assert _levels_over(False, [d2l_teacher, d2l_teacher]) == [StaffLevel.OWNER, StaffLevel.OWNER]
    assert _levels_over(True, [d2l_teacher]) == [StaffLevel.TA]
    assert _levels_over(True, [[M + "Learner", INST + "Learner"]]) == [StaffLevel.STUDENT]
    assert _levels_over(True, [[INST + "Administrator"]]) == [None]  # D2L admins launch without a course role


def test_rights_by_level() -> None:
    assert [can_act(level) for level in StaffLevel] == [True, True, True, False, False]
    assert [can_configure(level) for level in StaffLevel] == [True, True, False, False, False]
