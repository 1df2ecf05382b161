"""Deep-linking return: verify the tool's signed response and add its ltiResourceLink (and line item)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from flask import abort, render_template, request, url_for
from sqlalchemy.orm import Session

from dev.demo_lms.blueprint import bp
from dev.demo_lms.messages import DL, LTI, HintError, decode_dl_data
from dev.demo_lms.models import DemoLineItem, DemoLink, DemoTool
from dev.demo_lms.origins import issuer
from dev.demo_lms.session import read_session
from dev.demo_lms.tool_keys import (
    ToolTokenInvalid,
    remember_once,
    unverified_issuer,
    verify_tool_jwt,
)
from dev.demo_lms.tools import tool_by_client_id
from lti_app.runtime import commit, db, settings


class DeepLinkError(ValueError):
    """The deep-linking response cannot be accepted; the message says why."""


@dataclass(frozen=True)
class LinkSpec:
    """An assignment link to create, read from one content item."""

    title: str
    url: str | None
    custom: dict[str, str] = field(default_factory=dict)
    due_at: datetime | None = None
    line_item: dict[str, Any] | None = None


def _when(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise DeepLinkError(f"{name} is not an ISO 8601 date-time.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _line_item(raw: Any, title: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    maximum = raw.get("scoreMaximum") if isinstance(raw, dict) else None
    if isinstance(maximum, bool) or not isinstance(maximum, int | float) or maximum <= 0:
        raise DeepLinkError("lineItem.scoreMaximum must be a number above 0.")
    return {
        "label": str(raw.get("label") or title)[:255],
        "score_maximum": float(maximum),
        "resource_id": str(raw["resourceId"])[:255] if raw.get("resourceId") else None,
        "tag": str(raw["tag"])[:255] if raw.get("tag") else None,
    }


def parse_content_item(item: Any, tool: DemoTool) -> LinkSpec:
    """Check one content item (ltiResourceLink only) and return what to create."""
    if not isinstance(item, dict) or item.get("type") != "ltiResourceLink":
        raise DeepLinkError("Only ltiResourceLink content items are accepted.")
    title = str(item.get("title") or "Cloud Workstation assignment")[:255]
    url = item.get("url") or None
    if url is not None and (urlparse(str(url)).hostname or "") != urlparse("//" + tool.domain).hostname:
        raise DeepLinkError("The link's url is not on the tool's registered domain.")
    custom = item.get("custom") or {}
    if not isinstance(custom, dict) or any(isinstance(v, dict | list) for v in custom.values()):
        raise DeepLinkError("custom must be an object of string values.")
    submission = item.get("submission") if isinstance(item.get("submission"), dict) else {}
    return LinkSpec(
        title=title,
        url=str(url) if url else None,
        custom={str(k): str(v) for k, v in custom.items()},
        due_at=_when(submission.get("endDateTime"), "submission.endDateTime"),
        line_item=_line_item(item.get("lineItem"), title),
    )


def create_link(session: Session, course_id: int, tool: DemoTool, spec: LinkSpec) -> DemoLink:
    """Add the assignment link and, when graded, its line item (flushes)."""
    link = DemoLink(
        course_id=course_id,
        tool_id=tool.id,
        resource_link_id="link-" + secrets.token_hex(8),
        kind="assignment",
        title=spec.title,
        url=spec.url,
        custom=spec.custom,
        due_at=spec.due_at,
    )
    session.add(link)
    session.flush()
    if spec.line_item is not None:
        session.add(
            DemoLineItem(course_id=course_id, tool_id=tool.id, link_id=link.id, end_at=spec.due_at, **spec.line_item)
        )
        session.flush()
    return link


def _verified(token: str) -> tuple[DemoTool, dict[str, Any], int]:
    tool = tool_by_client_id(db(), unverified_issuer(token))
    if tool is None:
        raise DeepLinkError("The response is not from a tool registered with this Demo LMS.")
    claims = verify_tool_jwt(tool, token, issuer(settings()), require=("exp", "nonce"))
    if claims.get(LTI + "message_type") != "LtiDeepLinkingResponse" or claims.get(LTI + "version") != "1.3.0":
        raise DeepLinkError("The JWT is not an LTI 1.3 LtiDeepLinkingResponse.")
    if claims.get(LTI + "deployment_id") != tool.deployment_id:
        raise DeepLinkError("The deployment_id is not the tool's deployment.")
    course_id, user_id, tool_id = decode_dl_data(settings().secret_key, claims.get(DL + "data"))
    session = read_session()
    if tool_id != tool.id or session is None or session.user_id != user_id:
        raise DeepLinkError("This response answers a request made by someone else.")
    remember_once(db(), tool.client_id, "dl-nonce:" + str(claims["nonce"]), claims["exp"])
    return tool, claims, course_id


@bp.post("/deep-link-return")
def deep_link_return() -> str:
    """Accept the tool's deep-linking response (inside the iframe) and add the assignment."""
    try:
        tool, claims, course_id = _verified(request.form.get("JWT", ""))
        items = claims.get(DL + "content_items") or []
        if not isinstance(items, list) or len(items) > 1:
            raise DeepLinkError("Exactly one content item is accepted (accept_multiple is false).")
        links = [create_link(db(), course_id, tool, parse_content_item(i, tool)) for i in items]
    except (ToolTokenInvalid, HintError, DeepLinkError) as exc:
        db().rollback()
        abort(400, str(exc))
    commit()
    return render_template(
        "demo_lms/deep_link_done.html",
        links=links,
        message=claims.get(DL + "msg"),
        error=claims.get(DL + "errormsg"),
        course_url=url_for("demo_lms.course"),
    )
