"""What a launch tells LMS sync: the course's service URLs, the link's line item and due date, a CSV match,
and (for instructors) whether the roster is stale. Cheap: a few statements, no LMS calls in the request."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from redis import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.claims import LaunchClaims
from classroom.db import utcnow
from classroom.models import Course, CourseLms, LineItemKind, LmsLineItem, Person
from classroom.roles import StaffLevel, can_configure
from lms_sync import progress
from lms_sync.deadlines import due_from_custom, record_due
from lms_sync.placeholders import match_on_launch

DEFAULT_STALE_S = 6 * 3600


def _nothing() -> None:
    return None


def _canvas_course_id(claims: LaunchClaims) -> str:
    value = claims.custom.get("canvas_course_id", "")
    return value if value.isdigit() else ""


def remember_services(session: Session, course_id: int, claims: LaunchClaims) -> bool:
    """Store the launch's NRPS and AGS endpoints (written only when they changed); True if written."""
    ags_url = str(claims.ags.get("lineitems") or "")
    scopes = sorted(s for s in claims.ags.get("scope") or () if isinstance(s, str))
    canvas_id = _canvas_course_id(claims)
    row = session.get(CourseLms, course_id)
    current = {"nrps_url": "", "ags_lineitems_url": "", "ags_scopes": [], "canvas_course_id": ""}
    if row is not None:
        current = {k: getattr(row, k) for k in current}
    wanted = {
        "nrps_url": claims.nrps_url or current["nrps_url"],
        "ags_lineitems_url": ags_url or current["ags_lineitems_url"],
        "ags_scopes": scopes or list(current["ags_scopes"] or []),
        "canvas_course_id": canvas_id or current["canvas_course_id"],
    }
    if row is not None and all(current[k] == v for k, v in wanted.items()):
        return False
    if row is None:
        row = CourseLms(course_id=course_id, usage_passback=False)
        session.add(row)
    for key, value in wanted.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    return True


def remember_line_item(session: Session, course_id: int, claims: LaunchClaims) -> bool:
    """A graded link's line item (from the AGS claim), kept until an AGS listing fills in its details."""
    url = claims.ags.get("lineitem")
    if not isinstance(url, str) or not url:
        return False
    label = (claims.custom.get("assignment_title") or claims.resource_link_title or "Assignment")[:255]
    inserted = session.scalar(
        insert(LmsLineItem)
        .values(
            course_id=course_id,
            url=url,
            label=label,
            score_maximum=Decimal(100),
            kind=LineItemKind.ASSIGNMENT,
            resource_link_id=claims.resource_link_id[:255],
            tag="",
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["course_id", "url"], index_where=LmsLineItem.url != "")
        .returning(LmsLineItem.id)
    )
    return inserted is not None


def after_launch(
    session: Session,
    redis: Redis,
    course_id: int,
    claims: LaunchClaims,
    level: StaffLevel,
    *,
    stale_after_s: int = DEFAULT_STALE_S,
    person_id: int | None = None,
) -> Callable[[], None]:
    """Record what the launch says (flushes); returns the side effect to run after the commit (maybe nothing)."""
    remember_services(session, course_id, claims)
    new_item = remember_line_item(session, course_id, claims)
    fact = due_from_custom(claims.custom, resource_link_id=claims.resource_link_id, title=claims.resource_link_title)
    if fact is not None:
        record_due(session, course_id, fact)
    if person_id is None:  # callers that know who launched save these two queries
        platform_id = session.scalar(select(Course.platform_id).where(Course.id == course_id))
        person_id = session.scalar(select(Person.id).where(Person.platform_id == platform_id, Person.sub == claims.sub))
    if person_id is not None:
        match_on_launch(session, course_id, person_id)
    session.flush()
    sync = can_configure(level) and bool(claims.nrps_url) and progress.is_stale(redis, course_id, stale_after_s)

    def release() -> None:
        from lms_sync.jobs import enqueue_dates, enqueue_roster_sync

        if sync:
            enqueue_roster_sync(redis, course_id, full=False)
        elif new_item:
            enqueue_dates(redis, course_id)

    return release if (sync or new_item) else _nothing
