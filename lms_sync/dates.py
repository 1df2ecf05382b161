"""Refresh a course's due dates from AGS line items and (when an instructor connected it) Canvas REST."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from classroom.models import CourseLms, DueSource
from lms_sync.canvas import CanvasNotConnected, connected_instructor, due_facts_from_canvas
from lms_sync.context import LmsContext, canvas_api, lti_services
from lms_sync.deadlines import replace_source
from lms_sync.http import LmsError
from lms_sync.line_items import refresh_line_items


@dataclass
class DatesResult:
    """Rows written per source, and what went wrong (shown on the sync page)."""

    line_items: int = 0
    canvas: int = 0
    errors: list[str] = field(default_factory=list)


def refresh_course_dates(session: Session, ctx: LmsContext, course_id: int) -> DatesResult:
    """Read both remote sources; each failure is reported, the other source still refreshes (flushes)."""
    result = DatesResult()
    row = session.get(CourseLms, course_id)
    if row is None:
        return result
    if row.ags_lineitems_url:
        try:
            result.line_items = refresh_line_items(
                session, course_id, lti_services(session, ctx, course_id), row.ags_lineitems_url
            )
        except LmsError as exc:
            result.errors.append(f"LMS line items: {exc.message}")
    if row.canvas_course_id:
        person_id = connected_instructor(session, course_id)
        api = canvas_api(session, ctx, person_id) if person_id else None
        if api is not None:
            try:
                facts = due_facts_from_canvas(api.assignments(row.canvas_course_id))
                result.canvas = replace_source(session, course_id, DueSource.CANVAS_REST, facts)
            except (LmsError, CanvasNotConnected) as exc:
                result.errors.append(f"Canvas: {getattr(exc, 'message', str(exc))}")
    session.flush()
    return result
