"""Every reader of a student's spend counts what the cap counts (`SpendDaily.spent`: compute, storage and data sent
out): the launch check's and budget page's `student_money`, the staff overview, the usage passback and the report."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from classroom.models import SpendDaily
from classroom.services.budgets import student_money
from classroom.services.reports import course_report
from classroom.services.workspace_overview import student_overview
from lms_sync.usage import usage_source
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person


def test_data_sent_out_is_in_every_readers_spend(session):
    course = make_course(session, time_zone="UTC", term_end=date(2024, 12, 13))
    make_policy(session, course)
    emily = make_person(session, course)
    for day, compute, transfer in ((date(2024, 10, 1), "2.00", "0.25"), (date(2024, 10, 2), "1.00", "0.75")):
        parts = {"compute": Decimal(compute), "storage": Decimal("0.50"), "transfer": Decimal(transfer)}
        session.add(SpendDaily(course_id=course.id, person_id=emily.id, day=day, running_seconds=3600, **parts))
    session.commit()
    expected = Decimal("5.00")  # 3.00 compute + 1.00 storage + 1.00 sent out
    money = student_money(session, course, emily.id, datetime(2024, 10, 3, tzinfo=UTC))
    report = course_report(session, course)
    assert money is not None and report is not None
    assert money.spent == expected and report.rows[0].spent == expected
    assert student_overview(session, course.id)[emily.id].spent == expected
    assert usage_source(session, course.id)[emily.id].spend == expected
