"""Grades: staff enter scores and comments per assignment; the worker posts them; failures show with a retry."""

from __future__ import annotations

from decimal import Decimal

from flask import Response, request
from sqlalchemy import select

from classroom.models import GradeStatus, LmsGrade, LmsLineItem
from classroom.roles import can_configure
from lms_sync.grades import (
    GradeError,
    add_line_item,
    can_grade,
    enter_grade,
    grade_rows,
    line_items,
    parse_comment,
    parse_score,
    retry_grades,
    status_counts,
)
from lms_sync.jobs import enqueue_passback
from lms_sync.roster import PLACEHOLDER_PREFIX
from lti_app.auth import current, requires
from lti_app.boundary import parse_form, parse_query
from lti_app.boundary.forms import GradesQuery, LineItemForm, RetryForm
from lti_app.course_sync import bp
from lti_app.course_sync.common import back_to
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import after_commit, commit, db, runtime

STATUS_LABELS = {
    GradeStatus.PENDING: "Waiting to be sent",
    GradeStatus.POSTING: "Sending",
    GradeStatus.POSTED: "In the LMS gradebook",
    GradeStatus.FAILED: "Not sent",
    GradeStatus.REJECTED: "Refused by the LMS",
}


def _item(item_id: int) -> LmsLineItem:
    item = db().get(LmsLineItem, item_id)
    if item is None or item.course_id != current().course.id:
        raise ToolError("There is no such gradebook column in this course.", status=404, title="Not found")
    return item


def _grades_page(item: LmsLineItem | None, status: int = 200, **extra: object) -> tuple[str, int]:
    ctx = current()
    items = line_items(db(), ctx.course.id)
    item = item or (items[0] if items else None)
    problems = (
        db()
        .scalars(
            select(LmsGrade).where(
                LmsGrade.course_id == ctx.course.id, LmsGrade.status.in_((GradeStatus.FAILED, GradeStatus.REJECTED))
            )
        )
        .all()
    )
    return page(
        "sync/grades.html",
        items=items,
        item=item,
        rows=grade_rows(db(), ctx.course.id, item.id) if item else [],
        counts=status_counts(db(), ctx.course.id),
        problems=len(problems),
        status_labels=STATUS_LABELS,
        may_add=can_configure(ctx.level),
        errors=extra.pop("errors", {}),
        values=extra.pop("values", {}),
        **extra,
    ), status


@bp.get("/sync/grades")
@requires(can_grade)
def grades() -> tuple[str, int]:
    """The grades page for one column (the first one by default)."""
    item_id = parse_query(GradesQuery).item
    return _grades_page(_item(item_id) if item_id else None)


@bp.post("/sync/grades/<int:item_id>")
@requires(can_grade)
def save_grades(item_id: int) -> Response | tuple[str, int]:
    """Save every changed score of a column; any bad value saves nothing and says which."""
    ctx = current()
    item = _item(item_id)
    rows = grade_rows(db(), ctx.course.id, item.id)
    errors: dict[int, str] = {}
    parsed: list[tuple[int, Decimal, str]] = []
    for row in rows:
        pid = row.person.id
        if row.person.sub.startswith(PLACEHOLDER_PREFIX):
            continue  # imported, not yet linked to an LMS account: the LMS could not take a score
        raw_score = request.form.get(f"score-{pid}", "")
        try:
            score = parse_score(raw_score, Decimal(item.score_maximum))
            comment = parse_comment(request.form.get(f"comment-{pid}", ""))
        except GradeError as exc:
            errors[pid] = str(exc)
            continue
        if score is None:
            if comment:
                errors[pid] = "A comment needs a score."
            continue
        parsed.append((pid, score, comment))
    if errors:
        values = {k: v for k, v in request.form.items() if k.startswith(("score-", "comment-"))}
        return _grades_page(item, 400, errors=errors, values=values)
    changed = sum(
        enter_grade(db(), item=item, person_id=pid, score=score, comment=comment, actor_person_id=ctx.person.id)
        for pid, score, comment in parsed
    )
    if changed:
        course_id, redis = ctx.course.id, runtime().redis
        after_commit(lambda: enqueue_passback(redis, course_id))
    commit()
    return back_to("course_sync.grades", item=item.id, saved=changed)


@bp.post("/sync/grades/retry")
@requires(can_grade)
def retry() -> Response:
    """Send failed grades again (one, or every failed one of the course)."""
    ctx = current()
    form = parse_form(RetryForm, status=400)
    ids = form.grade_id
    if not ids and form.all:
        ids = list(
            db().scalars(
                select(LmsGrade.id).where(
                    LmsGrade.course_id == ctx.course.id, LmsGrade.status.in_((GradeStatus.FAILED, GradeStatus.REJECTED))
                )
            )
        )
    if not ids:
        raise ToolError("Choose a grade to send again.", status=400, title="Nothing to retry")
    if retry_grades(db(), ctx.course.id, ids, actor_person_id=ctx.person.id):
        course_id, redis = ctx.course.id, runtime().redis
        after_commit(lambda: enqueue_passback(redis, course_id))
    commit()
    return back_to("course_sync.grades", **({"item": form.item} if form.item else {}))


@bp.post("/sync/line-items")
@requires(can_configure)
def new_line_item() -> Response | tuple[str, int]:
    """A new gradebook column made by the tool (created in the LMS with its first score)."""
    ctx = current()
    form = parse_form(LineItemForm, status=400)
    try:
        item = add_line_item(
            db(),
            ctx.course.id,
            label=form.label,
            points=form.points,
            actor_person_id=ctx.person.id,
        )
    except GradeError as exc:
        return _grades_page(
            None,
            400,
            column_error=str(exc),
            column_values=form.model_dump(),
        )
    commit()
    return back_to("course_sync.grades", item=item.id)
