"""Workshop services on their own: joining opens an hour before the start, even across midnight in course time."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from classroom.jobs.names import PROVISION_WORKSPACE
from classroom.models import Course, Person
from classroom.roles import StaffLevel
from classroom.services.workshops import WorkshopError, WorkshopValues, create_workshop
from config.catalog import load_catalog
from config.prices import load_prices
from provisioning.workshop_join import join_workshop
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

ZONE = ZoneInfo("America/Los_Angeles")
START = datetime(2026, 3, 14, 0, 30, tzinfo=ZONE)  # half past midnight, course time


def _join(session, code: str, now: datetime):  # type: ignore[no-untyped-def]
    return join_workshop(session, code, "Night owl", "", extension=False, catalog=load_catalog(),
                         prices=load_prices().region("us-east-1"), region="us-east-1", now=now)  # fmt: skip


def test_joining_opens_an_hour_before_a_start_just_after_midnight(session):
    origin = make_course(session, time_zone="America/Los_Angeles")
    make_policy(session, origin)
    owner = make_person(session, origin, name="Jennifer Martinez", level=StaffLevel.OWNER)
    values = WorkshopValues(title="Midnight ML", starts_at=START, hours=Decimal(2), max_participants=5,
                            budget=Decimal(25), template_id="ml-cpu-student")  # fmt: skip
    workshop, code = create_workshop(session, origin, session.get(Person, owner.id), values, START - timedelta(days=2))
    session.commit()
    assert session.get(Course, workshop.course_id).term_start == START.date() - timedelta(days=1)
    with pytest.raises(WorkshopError, match="not open yet"):
        _join(session, code, START - timedelta(hours=1, minutes=1))
    session.rollback()
    joined = _join(session, code, START - timedelta(minutes=45))  # 23:45 the day before, course time
    assert joined.workspace_id and [j.func for j in joined.jobs] == [PROVISION_WORKSPACE]
