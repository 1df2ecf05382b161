"""Assignment and Grade Services 2.0: line items (the tool's gradebook columns)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, g, request
from sqlalchemy import select

from dev.demo_lms.api import (
    add_next_link,
    api_url,
    course_or_404,
    fetch_page,
    json_response,
    page_args,
)
from dev.demo_lms.blueprint import bp
from dev.demo_lms.messages import AGS, iso
from dev.demo_lms.models import DemoCourse, DemoLineItem, DemoLink
from dev.demo_lms.oauth import requires_scope
from lti_app.runtime import commit, db

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
WRITE, READ = AGS + "lineitem", AGS + "lineitem.readonly"


def item_url(context_id: str, item_id: int) -> str:
    """The line item's id (its URL)."""
    return api_url(f"/api/contexts/{context_id}/lineitems/{item_id}")


def item_json(course: DemoCourse, item: DemoLineItem) -> dict[str, Any]:
    """One line item as AGS shows it."""
    body: dict[str, Any] = {
        "id": item_url(course.context_id, item.id),
        "label": item.label,
        "scoreMaximum": item.score_maximum,
    }
    link = db().get(DemoLink, item.link_id) if item.link_id else None
    optional = {
        "resourceId": item.resource_id,
        "tag": item.tag,
        "resourceLinkId": link and link.resource_link_id,
        "startDateTime": item.start_at and iso(item.start_at),
        "endDateTime": item.end_at and iso(item.end_at),
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


def _when(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        abort(400, f"{name} must be an ISO 8601 date-time.")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _link_id(course: DemoCourse, resource_link_id: Any) -> int | None:
    if not resource_link_id:
        return None
    link = db().scalar(
        select(DemoLink).where(DemoLink.resource_link_id == str(resource_link_id), DemoLink.course_id == course.id)
    )
    if link is None:
        abort(400, "resourceLinkId is not a link in this course.")
    return link.id


def apply_body(course: DemoCourse, item: DemoLineItem, body: Any) -> None:
    """Check a line item body and copy it onto the row (400 on bad input)."""
    if not isinstance(body, dict):
        abort(400, "The body must be a JSON line item.")
    label, maximum = body.get("label"), body.get("scoreMaximum")
    if not isinstance(label, str) or not label.strip():
        abort(400, "label is required.")
    if isinstance(maximum, bool) or not isinstance(maximum, int | float) or maximum <= 0:
        abort(400, "scoreMaximum must be a number above 0.")
    if "resourceLinkId" in body or item.id is None:  # an update without it keeps the link
        item.link_id = _link_id(course, body.get("resourceLinkId"))
    item.label, item.score_maximum = label.strip()[:255], float(maximum)
    item.resource_id = str(body["resourceId"])[:255] if body.get("resourceId") else None
    item.tag = str(body["tag"])[:255] if body.get("tag") else None
    item.start_at = _when(body.get("startDateTime"), "startDateTime")
    item.end_at = _when(body.get("endDateTime"), "endDateTime")


def own_item(course: DemoCourse, item_id: int) -> DemoLineItem:
    """A line item of this course made by the calling tool, else 404."""
    item = db().get(DemoLineItem, item_id)
    if item is None or item.course_id != course.id or item.tool_id != g.demo_tool.id:
        abort(404, "No such line item.")
    return item


@bp.get("/api/contexts/<context_id>/lineitems")
@requires_scope(WRITE, READ)
def list_line_items(context_id: str) -> Response:
    """The tool's line items; filters resource_link_id, resource_id, tag; `limit` pages."""
    course = course_or_404(context_id)
    limit, page = page_args()
    query = select(DemoLineItem).where(DemoLineItem.course_id == course.id, DemoLineItem.tool_id == g.demo_tool.id)
    if request.args.get("resource_link_id"):
        query = query.join(DemoLink, DemoLink.id == DemoLineItem.link_id).where(
            DemoLink.resource_link_id == request.args["resource_link_id"]
        )
    if request.args.get("resource_id"):
        query = query.where(DemoLineItem.resource_id == request.args["resource_id"])
    if request.args.get("tag"):
        query = query.where(DemoLineItem.tag == request.args["tag"])
    rows, has_next = fetch_page(query.order_by(DemoLineItem.id), limit, page)
    response = json_response([item_json(course, i) for i in rows], CONTAINER)
    return add_next_link(
        response,
        f"/api/contexts/{context_id}/lineitems",
        limit,
        page,
        has_next,
        keep=("resource_link_id", "resource_id", "tag"),
    )


@bp.post("/api/contexts/<context_id>/lineitems")
@requires_scope(WRITE)
def create_line_item(context_id: str) -> Response:
    """Create a line item (201 with its URL as id)."""
    course = course_or_404(context_id)
    item = DemoLineItem(course_id=course.id, tool_id=g.demo_tool.id)
    apply_body(course, item, request.get_json(force=True, silent=True))
    db().add(item)
    db().flush()
    commit()
    response = json_response(item_json(course, item), LINEITEM, 201)
    response.headers["Location"] = item_url(context_id, item.id)
    return response


@bp.get("/api/contexts/<context_id>/lineitems/<int:item_id>")
@requires_scope(WRITE, READ)
def get_line_item(context_id: str, item_id: int) -> Response:
    """One line item."""
    course = course_or_404(context_id)
    return json_response(item_json(course, own_item(course, item_id)), LINEITEM)


@bp.put("/api/contexts/<context_id>/lineitems/<int:item_id>")
@requires_scope(WRITE)
def update_line_item(context_id: str, item_id: int) -> Response:
    """Replace a line item's fields."""
    course = course_or_404(context_id)
    item = own_item(course, item_id)
    apply_body(course, item, request.get_json(force=True, silent=True))
    commit()
    return json_response(item_json(course, item), LINEITEM)


@bp.delete("/api/contexts/<context_id>/lineitems/<int:item_id>")
@requires_scope(WRITE)
def delete_line_item(context_id: str, item_id: int) -> Response:
    """Delete a line item and its scores."""
    course = course_or_404(context_id)
    db().delete(own_item(course, item_id))
    commit()
    return Response(status=204)
