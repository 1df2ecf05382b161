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
        (LtiRole.INSTRUCTOR, None, False, StaffLevel.OWNER),
        (LtiRole.INSTRUCTOR, None, True, StaffLevel.INSTRUCTOR),
        (LtiRole.INSTRUCTOR, StaffLevel.OWNER, True, StaffLevel.OWNER),
        (LtiRole.INSTRUCTOR, StaffLevel.TA, True, StaffLevel.INSTRUCTOR),
        (LtiRole.TA, None, True, StaffLevel.TA),
        (LtiRole.TA, StaffLevel.HEAD_TA, True, StaffLevel.HEAD_TA),
        (LtiRole.TA, StaffLevel.OWNER, True, StaffLevel.TA),  # the LMS demoted them
        (LtiRole.STUDENT, StaffLevel.HEAD_TA, True, StaffLevel.STUDENT),
        (LtiRole.NONE, StaffLevel.STUDENT, True, None),
    ],
)
def test_level_for_launch(role, current, has_owner, expected) -> None:  # type: ignore[no-untyped-def]
    assert level_for_launch(role, current, has_owner) is expected


def test_rights_by_level() -> None:
    assert [can_act(level) for level in StaffLevel] == [True, True, True, False, False]
    assert [can_configure(level) for level in StaffLevel] == [True, True, False, False, False]
