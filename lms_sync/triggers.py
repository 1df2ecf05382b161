"""What a launch tells LMS sync: the course's service URLs, the link's line item and due date, a CSV match,
and (for instructors) whether the roster is stale. Cheap: one statement in the common case, no LMS calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from classroom.claims import LaunchClaims
from classroom.db import utcnow
from classroom.models import CourseLms, DueDate, LineItemKind
from classroom.roles import StaffLevel, can_configure
from classroom.sql import enum_cast, sql_value
from lms_sync import progress
from lms_sync.deadlines import DUE_UPSERT_SQL, due_from_custom
from lms_sync.placeholders import fold_placeholder, placeholder_sub
from lms_sync.roster import PLACEHOLDER_PREFIX

DEFAULT_STALE_S = 6 * 3600


def _nothing() -> None:
    return None


def _canvas_course_id(claims: LaunchClaims) -> str:
    value = claims.custom.get("canvas_course_id", "")
    return value if value.isdigit() else ""


# What a launch tells LMS sync, in one statement: the link's due date and its line item are written when new or
# changed, and the course's stored service URLs and a CSV placeholder with the person's email are read back.
# (Text: SQLAlchemy does not cache PostgreSQL ON CONFLICT inserts.)
DUE_FROM_LAUNCH = (
    f"SELECT :course_id, {enum_cast(':due_source', DueDate.source)}, :due_key, :due_title, :due_at, :due_url, :now"
    " WHERE :has_due"
)
LAUNCH_FACTS = text(f"""
WITH due AS ({DUE_UPSERT_SQL.format(source=DUE_FROM_LAUNCH)}), item AS (
    INSERT INTO lms_line_items (course_id, url, label, score_maximum, kind, resource_link_id, tag, created_at)
    SELECT :course_id, :item_url, :item_label, 100, {sql_value(LineItemKind.ASSIGNMENT)}, :resource_link_id, '', :now
    WHERE :has_item
    ON CONFLICT (course_id, url) WHERE url <> '' DO NOTHING
    RETURNING id
)
SELECT cl.course_id IS NOT NULL AS has_services, cl.nrps_url, cl.ags_lineitems_url, cl.ags_scopes,
       cl.canvas_course_id,
       (SELECT p.id FROM people p JOIN enrollments e ON e.person_id = p.id
        WHERE e.course_id = :course_id AND p.sub = :placeholder_sub
          AND p.platform_id = (SELECT platform_id FROM courses WHERE id = :course_id)) AS placeholder_id,
       (SELECT count(*) FROM item) AS new_items
FROM (SELECT 1) AS one LEFT JOIN course_lms cl ON cl.course_id = :course_id
""")

SERVICE_FIELDS = ("nrps_url", "ags_lineitems_url", "ags_scopes", "canvas_course_id")


def services_to_store(current: Mapping[str, Any] | None, claims: LaunchClaims) -> dict[str, Any] | None:
    """The course's NRPS and AGS endpoints after this launch, or None when the stored ones are already those.

    A launch that leaves a service out keeps what an earlier launch announced.
    """
    now = {k: (current or {}).get(k) or ([] if k == "ags_scopes" else "") for k in SERVICE_FIELDS}
    scopes = sorted(s for s in claims.ags.get("scope") or () if isinstance(s, str))
    wanted = {
        "nrps_url": claims.nrps_url or now["nrps_url"],
        "ags_lineitems_url": str(claims.ags.get("lineitems") or "") or now["ags_lineitems_url"],
        "ags_scopes": scopes or list(now["ags_scopes"]),
        "canvas_course_id": _canvas_course_id(claims) or now["canvas_course_id"],
    }
    return None if current is not None and wanted == now else wanted


def store_services(session: Session, course_id: int, values: Mapping[str, Any]) -> None:
    """Write the course's service endpoints (creating its course_lms row)."""
    row = session.get(CourseLms, course_id)
    if row is None:
        row = CourseLms(course_id=course_id, usage_passback=False)
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()


def _facts_params(course_id: int, claims: LaunchClaims) -> dict[str, Any]:
    fact = due_from_custom(claims.custom, resource_link_id=claims.resource_link_id, title=claims.resource_link_title)
    item_url = claims.ags.get("lineitem")
    has_item = isinstance(item_url, str) and bool(item_url)
    email = claims.email
    return {
        "course_id": course_id,
        "now": utcnow(),
        "has_due": fact is not None,
        "due_source": fact.source.value if fact else None,
        "due_key": fact.key if fact else None,
        "due_title": fact.title if fact else None,
        "due_at": fact.due_at if fact else None,
        "due_url": fact.url if fact else None,
        "has_item": has_item,
        "item_url": item_url if has_item else None,
        "item_label": (claims.custom.get("assignment_title") or claims.resource_link_title or "Assignment")[:255],
        "resource_link_id": claims.resource_link_id[:255],
        # A person with an email can take over the enrollment a CSV import made for that address.
        "placeholder_sub": placeholder_sub(email) if email and not claims.sub.startswith(PLACEHOLDER_PREFIX) else None,
    }


def after_launch(
    session: Session,
    redis: Redis,
    course_id: int,
    claims: LaunchClaims,
    level: StaffLevel,
    *,
    person_id: int,
    stale_after_s: int = DEFAULT_STALE_S,
) -> Callable[[], None]:
    """Record what the launch says (one statement, more only when something changed; flushes).

    Returns the side effect to run after the commit (maybe nothing).
    """
    facts = session.execute(LAUNCH_FACTS, _facts_params(course_id, claims)).one()
    stored = {k: getattr(facts, k) for k in SERVICE_FIELDS} if facts.has_services else None
    changed = services_to_store(stored, claims)
    if changed is not None:
        store_services(session, course_id, changed)
    if facts.placeholder_id is not None:
        fold_placeholder(session, course_id, facts.placeholder_id, person_id)
    session.flush()
    new_item = bool(facts.new_items)
    sync = can_configure(level) and bool(claims.nrps_url) and progress.is_stale(redis, course_id, stale_after_s)

    def release() -> None:
        from lms_sync.jobs import enqueue_dates, enqueue_roster_sync

        if sync:
            enqueue_roster_sync(redis, course_id, full=False)
        elif new_item:
            enqueue_dates(redis, course_id)

    return release if (sync or new_item) else _nothing
