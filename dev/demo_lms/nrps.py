"""Names and Role Provisioning Services 2.0: the course roster for the tool, paged."""

from __future__ import annotations

from typing import Any

from flask import Response, request
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
from dev.demo_lms.messages import NRPS_SCOPE
from dev.demo_lms.models import DemoMember
from dev.demo_lms.oauth import requires_scope
from dev.demo_lms.seed import LIS
from dev.demo_lms.shape import roster_roles
from lti_app.runtime import settings

MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


def member_json(member: DemoMember) -> dict[str, Any]:
    """One NRPS member."""
    return {
        "status": member.status,
        "name": member.name,
        "given_name": member.given_name,
        "family_name": member.family_name,
        "email": member.email,
        "user_id": member.user_id,
        "roles": roster_roles(settings(), member),
    }


def _role_uri(role: str) -> str:
    return role if "://" in role else LIS + "membership#" + role


@bp.get("/api/contexts/<context_id>/memberships")
@requires_scope(NRPS_SCOPE)
def memberships(context_id: str) -> Response:
    """The membership container; `limit` pages with Link rel="next", `role` filters."""
    course = course_or_404(context_id)
    limit, page = page_args()
    query = select(DemoMember).where(DemoMember.course_id == course.id)
    if request.args.get("role"):
        query = query.where(DemoMember.roles.contains([_role_uri(request.args["role"])]))
    rows, has_next = fetch_page(query.order_by(DemoMember.position, DemoMember.id), limit, page)
    path = f"/api/contexts/{context_id}/memberships"
    body = {
        "id": api_url(path),
        "context": {"id": course.context_id, "label": course.label, "title": course.title},
        "members": [member_json(m) for m in rows],
    }
    return add_next_link(json_response(body, MEDIA_TYPE), path, limit, page, has_next, keep=("role",))
