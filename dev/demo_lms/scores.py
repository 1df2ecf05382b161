"""AGS scores (every post kept) and results (the latest score per user, on the line item's scale)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, abort, request
from sqlalchemy import select

from dev.demo_lms.ags import item_url, own_item
from dev.demo_lms.api import (
    add_next_link,
    course_or_404,
    fetch_page,
    json_response,
    page_args,
)
from dev.demo_lms.blueprint import bp
from dev.demo_lms.messages import AGS
from dev.demo_lms.models import DemoLineItem, DemoMember, DemoScore
from dev.demo_lms.oauth import requires_scope
from lti_app.runtime import commit, db

RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"
ACTIVITY = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")


class ScoreInvalid(ValueError):
    """The score body breaks the AGS rules."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_score(body: Any) -> dict[str, Any]:
    """Check a score body and return the DemoScore fields (pure)."""
    if not isinstance(body, dict):
        raise ScoreInvalid("The body must be a JSON score.")
    if not isinstance(body.get("userId"), str) or not body["userId"]:
        raise ScoreInvalid("userId is required.")
    if body.get("activityProgress") not in ACTIVITY or body.get("gradingProgress") not in GRADING:
        raise ScoreInvalid("activityProgress and gradingProgress must be AGS values.")
    try:
        timestamp = datetime.fromisoformat(str(body.get("timestamp")))
    except ValueError as exc:
        raise ScoreInvalid("timestamp must be an ISO 8601 date-time.") from exc
    if timestamp.tzinfo is None:
        raise ScoreInvalid("timestamp needs a time zone.")
    given, maximum = body.get("scoreGiven"), body.get("scoreMaximum")
    if given is not None and (not _number(given) or given < 0 or not _number(maximum) or maximum <= 0):
        raise ScoreInvalid("scoreGiven needs scoreMaximum (above 0) and must not be negative.")
    comment = body.get("comment")
    return {
        "user_id": body["userId"],
        "score_given": None if given is None else float(given),
        "score_maximum": float(maximum) if _number(maximum) else None,
        "comment": comment if isinstance(comment, str) else None,
        "timestamp": timestamp,
        "activity_progress": body["activityProgress"],
        "grading_progress": body["gradingProgress"],
    }


@bp.post("/api/contexts/<context_id>/lineitems/<int:item_id>/scores")
@requires_scope(AGS + "score")
def post_score(context_id: str, item_id: int) -> Response:
    """Record a score for a course member (409 if older than the latest one)."""
    course = course_or_404(context_id)
    item = own_item(course, item_id)
    try:
        fields = parse_score(request.get_json(force=True, silent=True))
    except ScoreInvalid as exc:
        abort(400, str(exc))
    member = db().scalar(
        select(DemoMember).where(DemoMember.course_id == course.id, DemoMember.user_id == fields["user_id"])
    )
    if member is None or member.status == "Deleted":
        abort(422, "User not found in course or is not enrolled.")
    latest = db().scalar(
        select(DemoScore.timestamp)
        .where(DemoScore.line_item_id == item.id, DemoScore.user_id == member.user_id)
        .order_by(DemoScore.timestamp.desc())
        .limit(1)
    )
    if latest is not None and fields["timestamp"] < latest:
        abort(409, "A newer score for this user is already recorded.")
    db().add(DemoScore(line_item_id=item.id, **fields))
    commit()
    return json_response(
        {"resultUrl": item_url(context_id, item.id) + "/results?user_id=" + member.user_id}, "application/json"
    )


def result_json(context_id: str, item: DemoLineItem, score: DemoScore) -> dict[str, Any]:
    """One AGS result: the score scaled to the line item's maximum."""
    url = item_url(context_id, item.id)
    body: dict[str, Any] = {
        "id": f"{url}/results/{score.user_id}",
        "scoreOf": url,
        "userId": score.user_id,
        "resultMaximum": item.score_maximum,
    }
    if score.score_given is not None and score.score_maximum:
        body["resultScore"] = round(score.score_given * item.score_maximum / score.score_maximum, 6)
    if score.comment:
        body["comment"] = score.comment
    return body


@bp.get("/api/contexts/<context_id>/lineitems/<int:item_id>/results")
@requires_scope(AGS + "result.readonly")
def results(context_id: str, item_id: int) -> Response:
    """The latest score of each user on this line item; `user_id` filters, `limit` pages."""
    course = course_or_404(context_id)
    item = own_item(course, item_id)
    limit, page = page_args()
    query = (
        select(DemoScore)
        .where(DemoScore.line_item_id == item.id)
        .order_by(DemoScore.user_id, DemoScore.timestamp.desc(), DemoScore.id.desc())
        .distinct(DemoScore.user_id)
    )
    if request.args.get("user_id"):
        query = query.where(DemoScore.user_id == request.args["user_id"])
    rows, has_next = fetch_page(query, limit, page)
    response = json_response([result_json(context_id, item, s) for s in rows], RESULTS)
    return add_next_link(
        response, f"/api/contexts/{context_id}/lineitems/{item_id}/results", limit, page, has_next, keep=("user_id",)
    )
