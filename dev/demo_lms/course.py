"""The course page (links and the tool iframe with platform storage), the gradebook and the roster."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, redirect, request, url_for
from sqlalchemy import select

from dev.demo_lms.blueprint import bp, page, tool_origins
from dev.demo_lms.messages import (
    DEEP_LINKING,
    RESOURCE_LINK,
    Hint,
    encode_hint,
    login_url,
)
from dev.demo_lms.models import (
    MEMBER_STATUSES,
    DemoCourse,
    DemoLineItem,
    DemoLink,
    DemoMember,
    DemoScore,
)
from dev.demo_lms.origins import issuer
from dev.demo_lms.personas import course_members, render_with_session
from dev.demo_lms.seed import ensure_seeded
from dev.demo_lms.session import check_csrf, signed_in_member
from dev.demo_lms.shape import storage_target
from dev.demo_lms.tools import latest_tool
from lti_app.runtime import commit, db, settings


def _signed_in() -> tuple[DemoCourse, DemoMember]:
    course = ensure_seeded(db())
    commit()
    member = signed_in_member(course)
    if member is None:
        abort(redirect(url_for("demo_lms.index"), code=303))
    assert member is not None
    return course, member


def course_links(course: DemoCourse, tool_id: int | None) -> list[DemoLink]:
    """The navigation link and the assignments of the current tool, oldest first."""
    query = select(DemoLink).where(DemoLink.course_id == course.id)
    if tool_id is not None:
        query = query.where((DemoLink.tool_id.is_(None)) | (DemoLink.tool_id == tool_id))
    return list(db().scalars(query.order_by(DemoLink.kind.desc(), DemoLink.id)))


def _launch(member: DemoMember, links: list[DemoLink]) -> tuple[str | None, str | None]:
    """The iframe's login URL and a heading, for ?link=<id> or ?deep_link=1."""
    tool = latest_tool(db())
    if tool is None:
        return None, None
    if request.args.get("deep_link") and member.is_instructor:
        hint = Hint(tool.id, None, DEEP_LINKING, storage_target(settings()))
        title, target = "Add assignment from Cloud Workstation", tool.target_link_uri
    else:
        link = next((lk for lk in links if str(lk.id) == request.args.get("link")), None)
        if link is None:
            return None, None
        hint = Hint(tool.id, link.id, RESOURCE_LINK, storage_target(settings()))
        title, target = link.title, link.url or tool.target_link_uri
    url = login_url(
        tool, issuer(settings()), member, encode_hint(settings().secret_key, hint), target, storage_target(settings())
    )
    return url, title


@bp.get("/course")
@page
def course() -> Response:
    """The course: links on the side, the chosen link's tool in an iframe."""
    course, member = _signed_in()
    tool = latest_tool(db())
    links = course_links(course, tool.id if tool else None)
    frame_url, frame_title = _launch(member, links)
    return render_with_session(
        "demo_lms/course.html",
        course=course,
        me=member,
        tool=tool,
        links=links,
        frame_url=frame_url,
        frame_title=frame_title,
        config={"toolOrigins": tool_origins()},
    )


def latest_scores(items: list[DemoLineItem]) -> dict[tuple[int, str], DemoScore]:
    """The newest score per (line item, user): the result the gradebook shows."""
    if not items:
        return {}
    rows = db().scalars(
        select(DemoScore)
        .where(DemoScore.line_item_id.in_([i.id for i in items]))
        .order_by(DemoScore.line_item_id, DemoScore.user_id, DemoScore.timestamp.desc(), DemoScore.id.desc())
        .distinct(DemoScore.line_item_id, DemoScore.user_id)
    )
    return {(s.line_item_id, s.user_id): s for s in rows}


@bp.get("/gradebook")
@page
def gradebook() -> Response:
    """Line items as columns, students as rows, the latest score in each cell (staff only)."""
    course, member = _signed_in()
    if not member.is_staff:
        abort(403, "The gradebook is for course staff.")
    items = list(
        db().scalars(select(DemoLineItem).where(DemoLineItem.course_id == course.id).order_by(DemoLineItem.id))
    )
    students = [m for m in course_members(course) if m.kind == "student"]
    return render_with_session(
        "demo_lms/gradebook.html",
        course=course,
        me=member,
        items=items,
        students=students,
        scores=latest_scores(items),
        tool=latest_tool(db()),
    )


@bp.get("/roster")
@page
def roster() -> Response:
    """Everyone in the course with their enrollment status (the instructor can change it)."""
    course, member = _signed_in()
    if not member.is_staff:
        abort(403, "The roster is for course staff.")
    return render_with_session(
        "demo_lms/roster.html",
        course=course,
        me=member,
        members=course_members(course),
        statuses=MEMBER_STATUSES,
        tool=latest_tool(db()),
    )


@bp.post("/roster/<int:member_id>/status")
def set_status(member_id: int) -> Response:
    """Drop, deactivate or reactivate someone (what NRPS then reports)."""
    check_csrf()
    course, me = _signed_in()
    target = db().get(DemoMember, member_id)
    status: Any = request.form.get("status")
    if not me.is_instructor or target is None or target.course_id != course.id or status not in MEMBER_STATUSES:
        abort(400, "Only the instructor can change an enrollment, to Active, Inactive or Deleted.")
    target.status = status
    commit()
    return redirect(url_for("demo_lms.roster"), code=303)
