"""Pure pieces of LMS sync: the roster diff, Link and Retry-After parsing, answer classification, due-date merging,
the throttle, usage comments and the welcome message. No fixtures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from classroom.models import DueSource, EnrollmentStatus, StaffLevel
from lms_sync.deadlines import DueFact, due_from_custom, merge_deadlines, parse_when
from lms_sync.http import Outcome, RetryPolicy, classify, parse_link_header, retry_after_seconds
from lms_sync.passback import Throttle
from lms_sync.ports import RemoteMember
from lms_sync.roster import LocalMember, diff_roster
from lms_sync.usage import Usage, usage_comment, usage_score
from lms_sync.welcome import WelcomeFacts, welcome_message
from tests.lms_sync.support.lms_platform import ROLE

ACTIVE, DROPPED = EnrollmentStatus.ACTIVE, EnrollmentStatus.DROPPED
POLICY = RetryPolicy(base_s=1, cap_s=8)


def local(n, sub, level=StaffLevel.STUDENT, status=ACTIVE, **kw):
    kw.setdefault("nrps_roles", tuple(ROLE["student"]))  # as a previous sync of a student recorded them
    return LocalMember(n, 100 + n, sub, level, status, **kw)


def remote(sub, role="student", status="Active", **kw):
    return RemoteMember(sub, tuple(ROLE[role]), status, **kw)


# --- roster diff ---------------------------------------------------------------------------------


def test_new_members_are_added_with_the_level_their_roles_give():
    changes = diff_roster(
        [], [remote("a"), remote("t", "ta"), remote("i", "instructor"), remote("o", "observer")], complete=True
    )
    assert [(a.member.user_id, a.level) for a in changes.adds] == [
        ("a", StaffLevel.STUDENT),
        ("t", StaffLevel.TA),
        ("i", StaffLevel.TA),
    ]  # nobody becomes owner; an instructor other than the owner starts as a read-only TA


def test_an_unchanged_roster_is_no_change_at_all():
    locals_ = [
        local(1, "a", name="A", email="a@u.edu", nrps_roles=tuple(ROLE["student"])),
        local(2, "t", StaffLevel.TA, nrps_roles=tuple(ROLE["ta"])),
    ]
    changes = diff_roster(locals_, [remote("a", name="A", email="a@u.edu"), remote("t", "ta")], complete=True)
    assert changes.empty and not any(changes.counts().values())


def test_roster_roles_are_recorded_when_they_change():
    members = [local(1, "a", nrps_roles=()), local(2, "i", StaffLevel.OWNER)]
    changes = diff_roster(members, [remote("a"), remote("i", "instructor")], complete=True)
    assert changes.roles_seen == [(1, tuple(ROLE["student"])), (2, tuple(ROLE["instructor"]))]


def test_a_student_the_lms_lists_as_staff_becomes_staff_but_staff_are_never_demoted():
    locals_ = [local(1, "a"), local(2, "t", StaffLevel.TA), local(3, "h", StaffLevel.HEAD_TA)]
    changes = diff_roster(locals_, [remote("a", "ta"), remote("t"), remote("h", "ta")], complete=True)
    assert [(c.person_id, c.before, c.after) for c in changes.level_changes] == [
        (101, StaffLevel.STUDENT, StaffLevel.TA),
    ]
    assert changes.kept_staff == [102] and changes.counts()["kept_staff"] == 1  # reported to the owner


def test_moodle_roster_lists_non_editing_teachers_as_learners_and_they_stay_staff():
    locals_ = [local(1, "alex", StaffLevel.HEAD_TA, pinned=True), local(2, "priya", StaffLevel.TA)]
    changes = diff_roster(locals_, [remote("alex"), remote("priya")], complete=True)
    assert not changes.level_changes and not changes.drops and sorted(changes.kept_staff) == [101, 102]


def test_a_level_the_owner_pinned_survives_any_roster_role():
    locals_ = [local(1, "x", StaffLevel.STUDENT, pinned=True), local(2, "y", StaffLevel.INSTRUCTOR, pinned=True)]
    changes = diff_roster(locals_, [remote("x", "instructor"), remote("y")], complete=True)
    assert not changes.level_changes


def test_inactive_deleted_missing_and_no_access_members_are_dropped():
    locals_ = [local(1, "a"), local(2, "b"), local(3, "c"), local(4, "d")]
    changes = diff_roster(
        locals_, [remote("a", status="Inactive"), remote("b", status="Deleted"), remote("d", "observer")], complete=True
    )
    assert sorted((c.person_id, c.reason) for c in changes.drops) == [
        (101, "no longer active in the LMS"),
        (102, "no longer active in the LMS"),
        (103, "not in the LMS roster"),
        (104, "LMS role gives no access"),
    ]


def test_differences_never_drop_the_members_they_do_not_list():
    changes = diff_roster([local(1, "a"), local(2, "b")], [remote("c")], complete=False)
    assert not changes.drops and len(changes.adds) == 1


def test_the_owner_is_never_changed_or_dropped():
    owner = local(1, "i", StaffLevel.OWNER, nrps_roles=tuple(ROLE["student"]))
    assert diff_roster([owner], [remote("i", "student")], complete=True).empty
    assert diff_roster([owner], [], complete=True).empty


def test_dropped_members_active_again_are_reactivated():
    changes = diff_roster([local(1, "a", status=DROPPED)], [remote("a")], complete=True)
    assert [(c.person_id, c.level) for c in changes.reactivations] == [(101, StaffLevel.STUDENT)]
    assert diff_roster([local(1, "a", status=DROPPED)], [remote("a", status="Deleted")], complete=True).empty


def test_names_update_but_an_omitted_field_never_blanks_ours():
    changes = diff_roster(
        [local(1, "a", name="Emily", email="e@u.edu")], [remote("a", name="Emily Chen")], complete=True
    )
    assert [(u.name, u.email) for u in changes.person_updates] == [("Emily Chen", "e@u.edu")]


def test_sections_change_only_when_the_source_knows_them():
    members = [local(1, "a", section="Section A")]
    assert diff_roster(members, [remote("a")], complete=True).empty
    assert diff_roster(members, [remote("a", section="Section B")], complete=True).sections == [(1, "Section B")]


def test_csv_placeholders_are_claimed_by_email_and_never_dropped():
    placeholder = local(1, "csv:emily@u.edu", email="emily@u.edu", section="A")
    other = local(2, "csv:david@u.edu", email="david@u.edu")
    changes = diff_roster([placeholder, other], [remote("lms-emily", email="Emily@U.edu")], complete=True)
    assert changes.claims == [(101, "lms-emily")] and not changes.adds and not changes.drops


def test_a_member_listed_twice_counts_once():
    assert len(diff_roster([], [remote("a"), remote("a")], complete=True).adds) == 1


# --- HTTP answers --------------------------------------------------------------------------------


def test_link_header_with_several_rels_keeps_url_case_and_commas():
    header = (
        '<https://lms.example/API/members?page=2&Limit=100&sort=a,b>; rel="next", '
        '<https://lms.example/API/members?since=5>; rel="differences"; type="x", '
        '<https://lms.example/first>; rel="first prev"'
    )
    links = parse_link_header(header)
    assert links["next"] == "https://lms.example/API/members?page=2&Limit=100&sort=a,b"
    assert links["differences"] == "https://lms.example/API/members?since=5"
    assert links["first"] == links["prev"] == "https://lms.example/first"
    assert parse_link_header('<https://x/2>; REL="Next"') == {"next": "https://x/2"}
    assert parse_link_header("") == {}


def test_retry_after_seconds_and_dates():
    now = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("3", now) == 3.0
    assert retry_after_seconds("Tue, 01 Oct 2024 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Tue, 01 Oct 2024 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None) is None


def test_classification_of_lms_answers():
    def verdict(status, body="", headers=None, attempt=1):
        return classify(status, headers or {}, body, attempt=attempt, policy=POLICY, rand=lambda: 1.0)

    assert verdict(200).outcome is Outcome.OK
    assert verdict(429, headers={"Retry-After": "7"}) == verdict(429, headers={"Retry-After": "7"})
    throttled = verdict(429, headers={"Retry-After": "7"})
    assert throttled.outcome is Outcome.RETRY and throttled.delay == 7 and throttled.throttled
    canvas = verdict(403, "403 Forbidden (Rate Limit Exceeded)", attempt=3)
    assert canvas.outcome is Outcome.RETRY and canvas.throttled and canvas.delay == 4
    assert verdict(503, attempt=5).delay == 8  # capped backoff
    assert verdict(403, '{"errors":[{"message":"user not authorized"}]}').outcome is Outcome.PERMANENT
    enrolled = verdict(422, '{"errors":[{"message":"User not found in course or is not a student"}]}')
    assert enrolled.outcome is Outcome.PERMANENT and enrolled.not_enrolled and "not enrolled" in enrolled.message
    assert verdict(401).outcome is Outcome.REAUTH and verdict(409).outcome is Outcome.CONFLICT
    assert verdict(400, "<html><b>Bad</b> request</html>").message == "HTTP 400: Bad request"


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(base_s=0.5, cap_s=4)
    assert [policy.backoff(a, rand=lambda: 1.0) for a in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 4]
    assert policy.backoff(1, rand=lambda: 0.0) == 0.25


def test_throttle_slows_down_to_its_minimum_and_recovers():
    t = Throttle(4)
    t.on_throttle()
    t.on_throttle()
    assert t.limit == 2
    t.on_throttle()
    assert t.limit == 2  # never below two in flight: a throttled post waits its own Retry-After anyway
    for _ in range(3):
        t.on_success()
    assert t.limit == 3
    single = Throttle(1)
    single.on_throttle()
    assert single.limit == 1


# --- due dates -----------------------------------------------------------------------------------


def test_due_dates_from_launch_custom_parameters():
    when = datetime(2024, 9, 3, 6, 59, tzinfo=UTC)
    fact = due_from_custom(
        {"due_at": "2024-09-02T23:59:00-07:00", "assignment_title": "Homework 1"},
        resource_link_id="link-1",
        title="Cloud Workstation",
    )
    assert fact == DueFact(DueSource.LAUNCH_CUSTOM, "link-1", "Homework 1", when)
    fallback = due_from_custom(
        {"due_at": "$Canvas.assignment.dueAt.iso8601", "resource_end_at": "2024-09-03T06:59Z"},
        resource_link_id="l",
        title="HW",
    )
    assert fallback.due_at == when and fallback.title == "HW"
    assert due_from_custom({"due_at": "not a date"}, resource_link_id="l", title="x") is None
    assert parse_when("2024-09-03T06:59:00") == when  # no zone: UTC


def test_deadlines_merge_sources_drop_the_past_and_sort():
    now = datetime(2024, 9, 1, tzinfo=UTC)
    hw1, hw2 = now + timedelta(days=1), now + timedelta(days=8)
    facts = [
        DueFact(DueSource.LAUNCH_CUSTOM, "l1", "Homework 1", hw1),
        DueFact(DueSource.CANVAS_REST, "42", "homework 1", hw1, "https://canvas/a/42"),
        DueFact(DueSource.AGS_LINE_ITEM, "u2", "Homework 2", hw2),
        DueFact(DueSource.AGS_LINE_ITEM, "u0", "Homework 0", now - timedelta(hours=1)),
    ]
    lines = merge_deadlines(facts, now)
    assert [(d.title, d.sources) for d in lines] == [
        ("homework 1", ("Canvas assignment", "assignment link")),
        ("Homework 2", ("LMS gradebook column",)),
    ]
    assert lines[0].url == "https://canvas/a/42" and lines[0].due_in(now) == "in 24 hours"
    assert lines[1].due_in(now) == "in 8 days"
    assert lines[0].when("America/Los_Angeles") == "Sun 1 Sep 2024, 5:00 PM PDT"


# --- usage and welcome ---------------------------------------------------------------------------


def test_usage_comment_is_readable_and_the_score_is_hours():
    usage = Usage(Decimal("12.456"), Decimal("4.175"), 9)
    assert usage_comment(usage, Decimal(24)) == (
        "Cloud Workstation usage: 12.5 hours in 9 sessions; $4.18 spent of the $24.00 budget."
    )
    assert usage_score(usage) == Decimal("12.46")
    assert usage_comment(Usage(sessions=1), None) == "Cloud Workstation usage: 0.0 hours in 1 session; $0.00 spent."


def test_welcome_message_says_what_the_seeds_email_says():
    facts = WelcomeFacts(
        "CS 229 - Machine Learning",
        "Jennifer Martinez",
        Decimal(24),
        "t3.medium (2 vCPU, 4 GB RAM Linux workspace with Python and Jupyter)",
        date(2024, 12, 13),
        "Canvas",
    )
    subject, body = welcome_message(facts, "Emily Chen")
    assert subject == "Welcome to CS 229 - Machine Learning - your Cloud Workstation access"
    for line in (
        "Hi Emily,",
        "- Budget: $24.00 for the whole term",
        "- Workspace type: t3.medium (2 vCPU, 4 GB RAM",
        "- The term ends: December 13, 2024",
        "Open the course in Canvas",
        "Jennifer Martinez",
    ):
        assert line in body
