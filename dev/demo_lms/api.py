"""Shared pieces of the service APIs: JSON with LTI media types, paging with Link headers, the course lookup."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Response, abort, request
from sqlalchemy import Select, select

from dev.demo_lms.models import DemoCourse
from dev.demo_lms.origins import demo_url
from lti_app.runtime import db, settings

T = TypeVar("T")
MAX_LIMIT = 1000


def api_url(path: str) -> str:
    """Absolute service URL on the demo host name."""
    return demo_url(settings(), path)


def course_or_404(context_id: str) -> DemoCourse:
    """The course with this context id."""
    course = db().scalar(select(DemoCourse).where(DemoCourse.context_id == context_id))
    if course is None:
        abort(404, "No such context.")
    return course


def json_response(body: Any, media_type: str, status: int = 200) -> Response:
    """A JSON response with an LTI media type."""
    return Response(json.dumps(body), status=status, content_type=media_type)


def page_args() -> tuple[int | None, int]:
    """The request's `limit` (None = everything) and 1-based `page`; 400 on nonsense."""
    try:
        limit = int(request.args["limit"]) if request.args.get("limit") else None
        page = int(request.args.get("page") or 1)
    except ValueError:
        abort(400, "limit and page must be whole numbers.")
    if (limit is not None and not 1 <= limit <= MAX_LIMIT) or page < 1:
        abort(400, f"limit must be 1..{MAX_LIMIT} and page at least 1.")
    return limit, page


def fetch_page(query: Select[tuple[T]], limit: int | None, page: int) -> tuple[Sequence[T], bool]:
    """Run a query for one page; return its rows and whether a next page exists."""
    if limit is None:
        return db().scalars(query).all(), False
    rows = db().scalars(query.offset((page - 1) * limit).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


def add_next_link(
    response: Response, path: str, limit: int | None, page: int, has_next: bool, keep: Sequence[str] = ()
) -> Response:
    """Add `Link: <...page=N+1>; rel="next"` keeping the filters named in `keep`."""
    if has_next and limit is not None:
        params = {k: request.args[k] for k in keep if request.args.get(k)}
        params.update(limit=str(limit), page=str(page + 1))
        response.headers["Link"] = f'<{api_url(path)}?{urlencode(params)}>; rel="next"'
    return response
