"""Booked course lines (EFS, archives) count in the course position: what remains of the course total drops by
exactly their amount, and a student's transfer counts once (in their spend), never twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from classroom.services.course_charges import book, storage_charge, transfer_charge
from classroom.services.course_money import course_money
from config.prices import load_prices
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

PRICES = load_prices().region("us-east-1")
GIB = 1024**3


def test_booked_efs_and_archives_reduce_what_remains_of_the_course_total(session) -> None:
    course = make_course(session, time_zone="UTC", term_end=date.today() + timedelta(days=30))
    make_policy(session, course)
    student = make_person(session, course)
    session.commit()
    now = datetime.now(UTC)
    start = now - timedelta(hours=730)
    before = course_money(session, course, now, PRICES)
    assert before is not None
    lines = [
        storage_charge(course.id, "efs", "fs-1", start, now, 20 * GIB, PRICES.efs_gb_month),  # $6.00
        storage_charge(
            course.id, "archive", "courses/c/archives/ws1/home.tar.gz", start, now, 50 * GIB, PRICES.s3_gb_month
        ),  # $1.15  # fmt: skip
    ]
    assert book(session, lines, now) == 2
    after = course_money(session, course, now, PRICES)
    assert after is not None and before.remaining - after.remaining == Decimal("7.15")

    out = transfer_charge(course.id, "i-1", start, now, 10 * GIB, PRICES, student.id)  # $0.90, the student's
    assert book(session, [out, *lines], now) == 1  # the EFS and archive lines again: booked once
    last = course_money(session, course, now, PRICES)
    assert last is not None and after.remaining - last.remaining == Decimal("0.90")
