"""AGS passback against a platform over HTTP: 429/5xx/rate-limit 403 injected, every score arrives exactly once."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from sqlalchemy import select

from classroom.models import GradeStatus, LineItemKind, LmsGrade, LmsLineItem, Person
from lms_sync.grades import enter_grade, retry_grades
from lms_sync.jobs import passback_course
from lms_sync.roster_sync import sync_roster
from tests.lms_sync.support.lms_platform import Fault

CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"


def roster(session, lms, course, lms_ctx, students=10):
    from lms_sync.context import lti_services

    for n in range(students):
        lms.add(f"s{n}", "student", name=f"Student {n}")
    sync_roster(session, course.course_id, lms=lti_services(session, lms_ctx, course.course_id))
    session.commit()
    return {p.sub: p.id for p in session.scalars(select(Person).where(Person.sub.like("s%")))}


def tool_item(session, lms, course, *, query="", label="Homework 1", maximum=10):
    item_id = lms.add_line_item(label, maximum, query=query)
    item = LmsLineItem(
        course_id=course.course_id,
        url=lms.line_item_url(item_id),
        label=label,
        score_maximum=Decimal(maximum),
        kind=LineItemKind.ASSIGNMENT,
    )
    session.add(item)
    session.commit()
    return item


def grade_all(session, item, people, score="7.5", comment="Good work"):
    changed = sum(
        enter_grade(session, item=item, person_id=pid, score=Decimal(score), comment=comment, actor_person_id=None)
        for pid in people.values()
    )
    session.commit()
    return changed


def statuses(session):
    session.expire_all()
    return Counter(g.status for g in session.scalars(select(LmsGrade)))


def test_every_score_arrives_exactly_once_through_429_and_5xx(session, lms, course, lms_ctx):
    people = roster(session, lms, course, lms_ctx, students=12)
    item = tool_item(session, lms, course, query="type_id=5")  # Moodle keeps a query string on line items
    grade_all(session, item, people)
    lms.inject(
        "score",
        Fault(429, "slow down", {"Retry-After": "1"}),
        Fault(503, "maintenance"),
        Fault(502, "bad gateway"),
        Fault(429, "slow down", {"Retry-After": "1"}),
        Fault(403, "403 Forbidden (Rate Limit Exceeded)"),
        Fault(500, "boom"),
    )
    report = passback_course(course.course_id)
    assert report["posted"] == 12 and report["failed"] == 0 and report["retries"] == 6
    accepted = lms.accepted()
    per_user = Counter(a.body["userId"] for a in accepted)
    assert sorted(per_user) == sorted(people) and set(per_user.values()) == {1}  # once each, none lost
    assert all(a.query == "type_id=5" for a in lms.scores)  # the line item's query string was kept
    assert {a.body["scoreGiven"] for a in accepted} == {7.5} and accepted[0].body["scoreMaximum"] == 10
    assert accepted[0].body["comment"] == "Good work" and "+00:00" in accepted[0].body["timestamp"]
    # Retry-After was honoured: the retry of a 429'd score came at least a second later
    for throttled in [a for a in lms.scores if a.status == 429]:
        retry = next(a for a in lms.scores if a.body["userId"] == throttled.body["userId"] and a.at > throttled.at)
        assert retry.at - throttled.at >= 0.95
    assert statuses(session) == {GradeStatus.POSTED: 12}
    assert CANVAS_SUBMISSION not in accepted[0].body  # first scores are new submissions


def test_the_same_score_is_not_posted_twice_and_updates_keep_one_canvas_submission(session, lms, course, lms_ctx):
    people = roster(session, lms, course, lms_ctx, students=3)
    item = tool_item(session, lms, course)
    grade_all(session, item, people)
    passback_course(course.course_id)
    assert grade_all(session, item, people) == 0  # saved again unchanged: nothing to post
    passback_course(course.course_id)
    assert len(lms.accepted()) == 3
    enter_grade(
        session, item=item, person_id=people["s1"], score=Decimal("9"), comment="Regraded", actor_person_id=None
    )
    session.commit()
    passback_course(course.course_id)
    accepted = lms.accepted()
    assert len(accepted) == 4
    update = accepted[-1].body
    assert update["userId"] == "s1" and update["scoreGiven"] == 9.0
    assert update[CANVAS_SUBMISSION] == {"new_submission": False}
    assert update["timestamp"] > accepted[1].body["timestamp"]
    assert lms.token_requests == 2  # NRPS once, AGS once: cached in Redis across jobs


def test_not_enrolled_is_permanent_visible_and_retryable(session, lms, course, lms_ctx):
    people = roster(session, lms, course, lms_ctx, students=2)
    item = tool_item(session, lms, course)
    lms.remove("s1")  # dropped in the LMS, not yet in the tool
    grade_all(session, item, people)
    report = passback_course(course.course_id)
    assert report["posted"] == 1 and report["rejected"] == 1
    calls = [a for a in lms.scores if a.body["userId"] == "s1"]
    assert len(calls) == 1  # never retried on its own
    grade = session.scalar(select(LmsGrade).where(LmsGrade.person_id == people["s1"]))
    assert grade.status is GradeStatus.REJECTED and "not enrolled" in grade.last_error
    lms.add("s1", "student")
    assert retry_grades(session, course.course_id, [grade.id], actor_person_id=course.owner_id) == 1
    session.commit()
    assert passback_course(course.course_id)["posted"] == 1
    assert statuses(session) == {GradeStatus.POSTED: 2}


def test_expired_service_token_is_replaced_once(session, lms, course, lms_ctx):
    people = roster(session, lms, course, lms_ctx, students=4)
    item = tool_item(session, lms, course)
    grade_all(session, item, people)
    assert passback_course(course.course_id)["posted"] == 4
    assert lms.token_requests == 2  # NRPS, AGS
    lms.expire_tokens()  # the token cached in Redis is now refused with 401
    grade_all(session, item, people, score="8")
    report = passback_course(course.course_id)
    assert report["posted"] == 4, report
    assert lms.token_requests == 3  # replaced once, then shared by every post
    assert [a.status for a in lms.scores].count(401) == 0  # 401s are answered before the score handler
    assert len(lms.accepted()) == 8


def test_a_refused_token_a_racing_thread_read_back_is_never_reused(session, lms, course, lms_ctx):
    """A thread that read the token from Redis just before another dropped it may write it back; it stays refused."""
    from lms_sync.context import lti_services
    from lms_sync.lti_adapter import AGS_SCOPES
    from lms_sync.tokens import RedisTokenCache

    roster(session, lms, course, lms_ctx, students=1)
    connector = lti_services(session, lms_ctx, course.course_id).connector
    scopes = list(AGS_SCOPES)
    refused = connector.get_access_token(scopes)
    lms.expire_tokens()
    connector.drop_token(scopes, refused)
    RedisTokenCache(lms_ctx.redis).put(connector._scope_key(sorted(scopes)), refused, 3600)  # the racing write-back
    fresh = connector.get_access_token(scopes)
    assert fresh != refused and fresh in lms.tokens
    assert connector.get_access_token(scopes) == fresh  # and then shared, not fetched again


def test_exhausted_retries_fail_visibly_without_losing_the_grade(session, lms, course, lms_ctx):
    people = roster(session, lms, course, lms_ctx, students=1)
    item = tool_item(session, lms, course)
    grade_all(session, item, people)
    lms.inject("score", *[Fault(503, "down")] * 6)
    assert passback_course(course.course_id)["failed"] == 1
    grade = session.scalar(select(LmsGrade))
    assert grade.status is GradeStatus.FAILED and "503" in grade.last_error and grade.posted_version == 0
    retry_grades(session, course.course_id, [grade.id], actor_person_id=course.owner_id)
    session.commit()
    assert passback_course(course.course_id)["posted"] == 1
    assert len(lms.accepted()) == 1


def test_a_column_made_in_the_tool_is_created_in_the_lms_with_its_first_score(session, lms, course, lms_ctx):
    from lms_sync.grades import add_line_item

    people = roster(session, lms, course, lms_ctx, students=2)
    item = add_line_item(session, course.course_id, label="Project 1", points="50", actor_person_id=course.owner_id)
    session.commit()
    grade_all(session, item, people, score="42")
    assert passback_course(course.course_id)["posted"] == 2
    session.refresh(item)
    assert item.url.startswith(lms.lineitems_url + "/")
    created = [i for i in lms.line_items.values() if i["label"] == "Project 1"]
    assert len(created) == 1 and created[0]["scoreMaximum"] == 50 and created[0]["tag"] == "cloud-workstation"
    assert passback_course(course.course_id)["posted"] == 0  # nothing new; the column is not created twice
    assert len([i for i in lms.line_items.values() if i["label"] == "Project 1"]) == 1


def test_score_bodies_are_json_with_absolute_scores(session, lms, course, lms_ctx):
    people = roster(session, lms, course, lms_ctx, students=1)
    item = tool_item(session, lms, course, maximum=20)
    grade_all(session, item, people, score="0", comment="")
    passback_course(course.course_id)
    body = lms.accepted()[0].body
    assert body["scoreGiven"] == 0 and body["scoreMaximum"] == 20 and "comment" not in body
    assert body["activityProgress"] == "Completed" and body["gradingProgress"] == "FullyGraded"
    json.dumps(body)
