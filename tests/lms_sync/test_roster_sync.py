"""NRPS roster sync against a platform over HTTP: paging, differences, adds, role changes, drops, no-op re-sync."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event, func, select, text

from classroom.jobs.queue import ENFORCEMENT_QUEUE, get_queue
from classroom.models import AuditEvent, Enrollment, EnrollmentStatus, Person, StaffLevel, Workspace
from classroom.workspaces.lifecycle import WorkspaceState
from lms_sync import progress
from lms_sync.jobs import enqueue_roster_sync, sync_course_roster
from tests.conftest import count_rows
from tests.lms_sync.conftest import run_jobs


def enrollment_of(session, course_id, sub):
    session.expire_all()
    return session.scalar(
        select(Enrollment)
        .join(Person, Person.id == Enrollment.person_id)
        .where(Enrollment.course_id == course_id, Person.sub == sub)
    )


def seed_roster(lms, students=7):
    lms.add("ta-alex", "ta", name="Alex Thompson")
    lms.add("ta-priya", "ta", name="Priya Sharma")
    for n in range(students):
        lms.add(f"s{n}", "student", name=f"Student {n}")


class WriteCounter:
    """Counts statements and rows written on an engine."""

    def __init__(self, engine):
        self.statements, self.rows, self.log = 0, Counter(), []
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn, cursor, statement, params, context, executemany):
        self.statements += 1
        self.log.append(statement.split("\n")[0][:80])
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and cursor.rowcount and cursor.rowcount > 0:
            self.rows[verb] += cursor.rowcount


def test_first_sync_follows_paging_and_adds_everyone_with_their_level(session, engine, redis, lms, course, lms_ctx):
    seed_roster(lms, students=7)
    enqueue_roster_sync(redis, course.course_id, full=True, actor_person_id=course.owner_id)
    # the LMS pages are small: the sync must follow every next link
    original = lms._members_page

    def small_pages(request):
        request.args = request.args.copy()
        request.args["limit"] = "3"
        return original(request)

    lms._members_page = small_pages
    run_jobs(redis)
    pages = [p for m, p in lms.requests_log if "names_and_roles" in p]
    assert len(pages) == 4 and "limit=100" in pages[0] and "page=2" in pages[1]  # 10 members, 3 a page
    assert enrollment_of(session, course.course_id, "s6").level is StaffLevel.STUDENT
    assert enrollment_of(session, course.course_id, "ta-alex").level is StaffLevel.TA
    assert enrollment_of(session, course.course_id, "instructor-1").level is StaffLevel.OWNER
    state = progress.read_state(redis, course.course_id)
    assert state["state"] == "done" and state["members"] == 10 and state["pages"] == 4
    assert state["counts"]["added"] == 9 and state["differences_url"]
    assert session.scalar(select(AuditEvent.details).where(AuditEvent.action == "roster.synced"))["added"] == 9
    assert lms.token_requests == 2  # one token per scope set: NRPS for the roster, AGS for the line items after it


def test_resync_of_an_unchanged_roster_writes_no_rows(session, engine, redis, lms, course, lms_ctx):
    seed_roster(lms, students=20)
    sync_course_roster(course.course_id, 1)
    audit_before = count_rows(engine, "audit_events")
    counter = WriteCounter(engine)
    result = sync_course_roster(course.course_id, 1)  # full re-sync
    assert result["added"] == 0 and sum(counter.rows.values()) == 0, counter.rows
    assert counter.statements <= 8, "\n".join(counter.log)  # reads only: course, platform, key, lock, roster
    result = sync_course_roster(course.course_id, 0)  # differences re-sync
    assert result["added"] == 0 and sum(counter.rows.values()) == 0, counter.rows
    assert count_rows(engine, "audit_events") == audit_before
    assert lms.token_requests == 1  # the service token was cached in Redis


def test_differences_link_applies_adds_role_changes_and_drops(session, engine, redis, lms, course, lms_ctx):
    seed_roster(lms, students=5)
    sync_course_roster(course.course_id, 1)
    lms.add("s-new", "student", name="Late Joiner")
    lms.set_role("s1", "ta")  # a student becomes a TA
    lms.set_role("ta-priya", "student")
    lms.set_status("s2", "Inactive")
    lms.remove("s3")
    result = sync_course_roster(course.course_id, 0)
    assert lms.differences_requests(), "the second sync must use the differences link"
    assert result["members"] == 5  # only the changed members were read
    assert result["added"] == 1 and result["role_changes"] == 1 and result["dropped"] == 2
    assert result["kept_staff"] == 1  # the LMS now lists Priya as a student: she stays staff, reported
    assert enrollment_of(session, course.course_id, "s1").level is StaffLevel.TA
    assert enrollment_of(session, course.course_id, "ta-priya").level is StaffLevel.TA
    assert enrollment_of(session, course.course_id, "s2").status is EnrollmentStatus.DROPPED
    assert enrollment_of(session, course.course_id, "s3").status is EnrollmentStatus.DROPPED
    assert enrollment_of(session, course.course_id, "s-new").status is EnrollmentStatus.ACTIVE
    actions = Counter(session.scalars(select(AuditEvent.action)).all())
    assert actions["enrollment.dropped"] == 2 and actions["enrollment.level_changed"] == 1
    # back in the LMS: re-activated, data kept
    lms.set_status("s2", "Active")
    assert sync_course_roster(course.course_id, 0)["reactivated"] == 1
    assert enrollment_of(session, course.course_id, "s2").status is EnrollmentStatus.ACTIVE


def test_full_sync_drops_members_the_lms_no_longer_lists_but_never_the_owner(session, redis, lms, course, lms_ctx):
    seed_roster(lms, students=3)
    sync_course_roster(course.course_id, 1)
    lms.remove("s0")
    lms.remove("instructor-1")
    result = sync_course_roster(course.course_id, 1)
    assert result["dropped"] == 1
    assert enrollment_of(session, course.course_id, "s0").status is EnrollmentStatus.DROPPED
    assert enrollment_of(session, course.course_id, "instructor-1").status is EnrollmentStatus.ACTIVE


def test_head_ta_promotion_and_sections_survive_a_sync(session, redis, lms, course, lms_ctx):
    seed_roster(lms, students=2)
    sync_course_roster(course.course_id, 1)
    alex = enrollment_of(session, course.course_id, "ta-alex")
    s0 = enrollment_of(session, course.course_id, "s0")
    alex.level, s0.section = StaffLevel.HEAD_TA, "Section A"
    session.commit()
    lms.add("s0", "student", name="Student 0 Renamed")
    sync_course_roster(course.course_id, 1)
    assert enrollment_of(session, course.course_id, "ta-alex").level is StaffLevel.HEAD_TA
    s0 = enrollment_of(session, course.course_id, "s0")
    assert s0.section == "Section A" and session.get(Person, s0.person_id).name == "Student 0 Renamed"


def test_dropped_student_loses_access_and_running_workspace_is_stopped(session, redis, lms, course, lms_ctx):
    seed_roster(lms, students=2)
    sync_course_roster(course.course_id, 1)
    s0 = enrollment_of(session, course.course_id, "s0")
    ws = Workspace(
        course_id=course.course_id,
        person_id=s0.person_id,
        link_key="hw1",
        template_id="ml-cpu-student",
        instance_type="t3.medium",
        volume_gb=30,
        region="us-east-1",
        state=WorkspaceState.RUNNING,
        instance_id="i-0123456789abcdef0",
    )
    session.add(ws)
    session.commit()
    lms.remove("s0")
    result = sync_course_roster(course.course_id, 0)
    assert result["dropped"] == 1
    session.refresh(ws)
    assert ws.state is WorkspaceState.STOPPING  # data kept: stopped, not terminated
    queued = get_queue(redis, ENFORCEMENT_QUEUE).get_job_ids()  # stops run on the enforcement queue
    assert f"stop_workspace-{ws.id}" in queued


def test_dropping_a_student_whose_workspace_is_still_provisioning_succeeds(session, redis, lms, course, lms_ctx):
    """It used to raise TransitionError (provisioning cannot become stopping) and roll the whole sync back."""
    seed_roster(lms, students=3)
    sync_course_roster(course.course_id, 1)
    launching = {}
    for sub, instance in (("s0", None), ("s1", "i-0fedcba9876543210")):  # not launched yet / launched meanwhile
        person_id = enrollment_of(session, course.course_id, sub).person_id
        launching[sub] = Workspace(
            course_id=course.course_id,
            person_id=person_id,
            link_key="hw1",
            template_id="ml-cpu-student",
            instance_type="t3.medium",
            volume_gb=30,
            region="us-east-1",
            state=WorkspaceState.PROVISIONING,
            instance_id=instance,
        )
        session.add(launching[sub])
    session.commit()
    lms.remove("s0")
    lms.remove("s1")
    result = sync_course_roster(course.course_id, 0)
    assert result["dropped"] == 2
    assert enrollment_of(session, course.course_id, "s0").status is EnrollmentStatus.DROPPED
    session.refresh(launching["s0"])
    session.refresh(launching["s1"])
    # intent recorded for both; the one without an instance is cancelled by its provision job when AWS answers
    assert launching["s0"].desired_state.value == "stopped" and launching["s0"].state is WorkspaceState.PROVISIONING
    assert launching["s1"].desired_state.value == "stopped" and launching["s1"].state is WorkspaceState.STOPPING
    queued = get_queue(redis, ENFORCEMENT_QUEUE).get_job_ids()  # stops run on the enforcement queue
    assert f"stop_workspace-{launching['s1'].id}" in queued and f"stop_workspace-{launching['s0'].id}" not in queued


def test_platform_errors_fail_the_sync_visibly_and_change_nothing(session, engine, redis, lms, course, lms_ctx):
    from tests.lms_sync.support.lms_platform import Fault

    seed_roster(lms, students=3)
    lms.inject("nrps", *[Fault(503, "busy")] * 10)
    before = count_rows(engine, "enrollments")
    result = sync_course_roster(course.course_id, 1)
    assert "error" in result and "503" in result["error"]
    assert count_rows(engine, "enrollments") == before
    assert progress.read_state(redis, course.course_id)["state"] == "failed"
    lms.faults.clear()
    lms.inject("nrps", Fault(500, "oops"), Fault(429, "slow down", {"Retry-After": "0"}))
    assert sync_course_roster(course.course_id, 1)["added"] == 5  # transient errors are retried


def test_one_sync_job_per_course_at_a_time(session, redis, lms, course, lms_ctx):
    seed_roster(lms, students=1)
    enqueue_roster_sync(redis, course.course_id, full=True)
    enqueue_roster_sync(redis, course.course_id, full=True)
    assert len(get_queue(redis)) == 1
    lock = redis.lock(f"cwc:lms:roster-lock:{course.course_id}", timeout=60)
    assert lock.acquire(blocking=False)
    assert "skipped" in sync_course_roster(course.course_id, 1)
    lock.release()


def test_csv_placeholders_are_claimed_by_email_and_keep_their_section(session, redis, lms, course, lms_ctx):
    from classroom.models import Course
    from lms_sync.csv_import import ImportRow
    from lms_sync.roster_import import import_roster

    c = session.get(Course, course.course_id)
    import_roster(
        session,
        c,
        [ImportRow(2, "emily.chen@university.edu", "Emily Chen", "Section A")],
        actor_person_id=course.owner_id,
        file_format="email, name, section",
    )
    session.commit()
    lms.add("emily-lms-id", "student", name="Emily Chen", email="Emily.Chen@university.edu")
    result = sync_course_roster(course.course_id, 1)
    assert result["claimed"] == 1 and result["added"] == 0
    e = enrollment_of(session, course.course_id, "emily-lms-id")
    assert e is not None and e.section == "Section A" and e.status is EnrollmentStatus.ACTIVE
    assert session.scalar(text("SELECT count(*) FROM people WHERE sub LIKE 'csv:%'")) == 0


def test_an_unexpected_failure_that_rq_retries_shows_retrying_then_the_retry_outcome(
    session, redis, lms, course, lms_ctx, monkeypatch
):
    from rq import Retry

    import lms_sync.jobs as jobs
    from classroom.jobs.queue import enqueue

    seed_roster(lms, students=2)
    real, calls, states = jobs.sync_roster, [], []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("connection reset in the middle of the sync")
        return real(*args, **kwargs)

    def spy(redis_, course_id, **fields):
        states.append(fields.get("state"))
        return real_update(redis_, course_id, **fields)

    real_update = progress.update_state
    monkeypatch.setattr(jobs, "sync_roster", fails_once)
    monkeypatch.setattr(progress, "update_state", spy)
    enqueue(redis, "lms_sync.jobs.sync_course_roster", course.course_id, 1, 0, retry=Retry(max=1))
    run_jobs(redis)
    assert [s for s in states if s] == ["running", "retrying", "running", "done"]
    assert progress.read_state(redis, course.course_id)["state"] == "done"
    assert enrollment_of(session, course.course_id, "s1").level is StaffLevel.STUDENT


def test_an_unexpected_failure_without_retries_left_is_final(session, redis, lms, course, lms_ctx, monkeypatch):
    import lms_sync.jobs as jobs

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "sync_roster", boom)
    with pytest.raises(RuntimeError):
        sync_course_roster(course.course_id, 1)  # called directly: no RQ job, so no retry is coming
    state = progress.read_state(redis, course.course_id)
    assert state["state"] == "failed" and "Sync now" in state["message"]


def test_moodle_roster_lists_non_editing_teachers_as_learners_they_stay_staff_and_are_reported(
    session, redis, lms, course, lms_ctx
):
    from classroom.services.staff import staff_rows
    from lms_sync.grades import grade_rows
    from tests.lms_sync.support.lms_platform import ROLE

    # Alex and Priya launched as Instructor (Moodle's non-editing teachers): read-only TAs until the owner says more
    for sub in ("alex", "priya"):
        p = Person(platform_id=course.platform_id, sub=sub, name=sub.title())
        session.add(p)
        session.flush()
        session.add(
            Enrollment(course_id=course.course_id, person_id=p.id, lti_roles=ROLE["instructor"], level=StaffLevel.TA)
        )
    session.commit()
    lms.add("alex", "student", name="Alex Thompson")  # NRPS: Learner
    lms.add("priya", "student", name="Priya Sharma")
    for n in range(3):
        lms.add(f"s{n}", "student")
    result = sync_course_roster(course.course_id, 1)
    assert result["kept_staff"] == 2 and result["role_changes"] == 0 and result["dropped"] == 0
    assert enrollment_of(session, course.course_id, "alex").level is StaffLevel.TA
    assert enrollment_of(session, course.course_id, "alex").nrps_roles == ROLE["student"]
    rows = {r.name: r for r in staff_rows(session, course.course_id)}
    alex = rows["Alex Thompson"]  # the roster's name replaced the launch's
    assert alex.lms_disagrees and alex.launch_labels == ["Instructor"] and alex.nrps_labels == ["Learner"]
    assert rows["Priya Sharma"].lms_disagrees and not rows["Jennifer Martinez"].lms_disagrees
    # staff are neither counted nor graded as students
    students = session.scalars(
        select(Person.sub)
        .join(Enrollment, Enrollment.person_id == Person.id)
        .where(Enrollment.course_id == course.course_id, Enrollment.level == StaffLevel.STUDENT)
    ).all()
    assert sorted(students) == ["s0", "s1", "s2"]
    from classroom.models import LmsLineItem

    item = LmsLineItem(course_id=course.course_id, label="HW1", score_maximum=10)
    session.add(item)
    session.flush()
    assert sorted(r.person.sub for r in grade_rows(session, course.course_id, item.id)) == ["s0", "s1", "s2"]
    # a re-sync of the same roster writes nothing, and still reports them
    again = sync_course_roster(course.course_id, 1)
    assert again["kept_staff"] == 2 and again["added"] == 0


def test_roster_growth_past_the_allocation_alerts_the_instructors_once_per_crossing(
    session, redis, lms, course, lms_ctx
):
    from decimal import Decimal

    from classroom.models import AlertSent, Course, Notification
    from tests.support.budget import make_policy

    make_policy(session, session.get(Course, course.course_id), total_budget=Decimal(48))  # two students fit
    session.commit()

    def notices() -> int:
        session.expire_all()
        over = Notification.subject.like("%over the course's IT allocation%")
        return session.scalar(select(func.count(Notification.id)).where(over))

    seed_roster(lms, students=2)
    sync_course_roster(course.course_id, 1)
    assert notices() == 0  # $48 of $48
    lms.add("s2", "student", name="Student 2")
    sync_course_roster(course.course_id, 0)
    assert enrollment_of(session, course.course_id, "s2").status is EnrollmentStatus.ACTIVE  # never refused
    assert notices() == 1
    lms.add("s3", "student", name="Student 3")
    sync_course_roster(course.course_id, 0)
    assert notices() == 1  # still over: the same crossing
    lms.remove("s2")
    lms.remove("s3")
    sync_course_roster(course.course_id, 0)
    assert session.scalar(select(func.count(AlertSent.id)).where(AlertSent.kind == "allocation-over")) == 0  # re-armed
    lms.add("s4", "student", name="Student 4")
    sync_course_roster(course.course_id, 0)
    assert notices() == 2  # a new crossing
