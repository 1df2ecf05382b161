"""Line items: learned from launches and AGS listings, created in the LMS for columns the tool made."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.models import DueSource, GradeStatus, LineItemKind, LmsGrade, LmsLineItem
from lms_sync.deadlines import DueFact, replace_source
from lms_sync.http import LmsError
from lms_sync.ports import LmsServices, RemoteLineItem

USAGE_TAG = "cwc-usage"
USAGE_LABEL = "Workspace usage"


def upsert_line_item(session: Session, course_id: int, item: RemoteLineItem, *, default_max: bool = False) -> bool:
    """Store one LMS line item by URL; writes only when new or changed. True when written."""
    values: dict[str, object] = {
        "label": item.label or "Assignment",
        "resource_link_id": item.resource_link_id,
        "tag": item.tag,
        "due_at": item.end_at,
    }
    if not default_max:
        values["score_maximum"] = item.score_maximum
    changed = or_(*(getattr(LmsLineItem, k).is_distinct_from(v) for k, v in values.items()))
    kind = LineItemKind.USAGE if item.tag == USAGE_TAG else LineItemKind.ASSIGNMENT
    stmt = (
        insert(LmsLineItem)
        .values(
            course_id=course_id,
            url=item.url,
            kind=kind,
            score_maximum=item.score_maximum,
            **{k: v for k, v in values.items() if k != "score_maximum"},
        )
        .on_conflict_do_update(
            index_elements=["course_id", "url"], index_where=LmsLineItem.url != "", set_=values, where=changed
        )
        .returning(LmsLineItem.id)
    )
    return session.scalar(stmt) is not None


def refresh_line_items(session: Session, course_id: int, lms: LmsServices, lineitems_url: str) -> int:
    """Read every AGS line item: store them and their end dates (due-date source 2). Returns rows written."""
    remote = lms.line_items(lineitems_url)
    writes = sum(1 for item in remote if item.url and upsert_line_item(session, course_id, item))
    facts = [
        DueFact(DueSource.AGS_LINE_ITEM, item.url[:512], item.label or "Assignment", item.end_at)
        for item in remote
        if item.url and item.end_at is not None and item.tag != USAGE_TAG
    ]
    writes += replace_source(session, course_id, DueSource.AGS_LINE_ITEM, facts)  # type: ignore[arg-type]
    return writes


def _match(remote: Sequence[RemoteLineItem], item: LmsLineItem) -> RemoteLineItem | None:
    """A line item already in the LMS that is this one (made by an earlier try that died before its commit)."""
    for r in remote:
        if item.kind is LineItemKind.USAGE and (r.tag == USAGE_TAG or r.resource_id == USAGE_TAG):
            return r
        if item.kind is LineItemKind.ASSIGNMENT and r.tag == item.tag and r.label == item.label:
            return r
    return None


def _fail_pending(session: Session, line_item_ids: list[int], message: str) -> None:
    """Grades waiting for a column the LMS does not have: failed, with the reason, until someone retries."""
    session.execute(
        update(LmsGrade)
        .where(LmsGrade.line_item_id.in_(line_item_ids), LmsGrade.status == GradeStatus.PENDING)
        .values(status=GradeStatus.FAILED, last_error=message[:2000])
    )


def create_missing(session: Session, course_id: int, lms: LmsServices, lineitems_url: str) -> list[str]:
    """Create in the LMS the tool's columns that have pending grades (flushes); returns error messages."""
    missing = session.scalars(
        select(LmsLineItem).where(
            LmsLineItem.course_id == course_id,
            LmsLineItem.url == "",
            LmsLineItem.id.in_(select(LmsGrade.line_item_id).where(LmsGrade.course_id == course_id)),
        )
    ).all()
    if not missing:
        return []
    if not lineitems_url:
        message = "The LMS has not offered grade passback (AGS line items) for this course."
        _fail_pending(session, [item.id for item in missing], message)
        return [message]
    errors = []
    remote = lms.line_items(lineitems_url)
    for item in missing:
        found = _match(remote, item)
        if found is None:
            try:
                found = lms.create_line_item(
                    lineitems_url,
                    label=item.label,
                    score_maximum=Decimal(item.score_maximum),
                    tag=item.tag,
                    resource_id=USAGE_TAG if item.kind is LineItemKind.USAGE else "",
                )
            except LmsError as exc:
                errors.append(f"Could not create the column “{item.label}” in the LMS: {exc.message}")
                _fail_pending(session, [item.id], errors[-1])
                continue
        item.url = found.url
    session.flush()
    return errors
