"""The platform's OIDC side: JWKS and the authorization endpoint that answers the tool's login with an id_token."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Response, abort, jsonify, render_template, request
from sqlalchemy import select

from dev.demo_lms.blueprint import bp, page
from dev.demo_lms.keys import public_jwks, sign, signing_key
from dev.demo_lms.messages import (
    DEEP_LINKING,
    Hint,
    HintError,
    LaunchInput,
    decode_hint,
    encode_dl_data,
    launch_claims,
)
from dev.demo_lms.models import (
    DemoCourse,
    DemoLaunch,
    DemoLineItem,
    DemoLink,
    DemoMember,
    DemoTool,
)
from dev.demo_lms.origins import demo_url, issuer
from dev.demo_lms.seed import CONTEXT_ID
from dev.demo_lms.session import read_session
from dev.demo_lms.shape import launch_roles, use_hint
from dev.demo_lms.tools import tool_by_client_id
from lti_app.runtime import commit, db, runtime, settings

log = logging.getLogger(__name__)


@bp.get("/jwks")
def jwks() -> Response:
    """The platform's public keys (the key is made on first use)."""
    if not public_jwks(db())["keys"]:
        signing_key(db())
        commit()
    response = jsonify(public_jwks(db()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@dataclass(frozen=True)
class AuthRequest:
    """A checked authorization request."""

    tool: DemoTool
    member: DemoMember
    course: DemoCourse
    hint: Hint
    link: DemoLink | None
    redirect_uri: str
    nonce: str
    state: str


def _param(name: str) -> str:
    return (request.values.get(name) or "").strip()


def _require(condition: bool, message: str) -> None:
    if not condition:
        log.warning("demo lms refused an authorization request: %s", message)
        abort(400, message)


def check_auth_request() -> AuthRequest:
    """Validate every OIDC and LTI parameter against the registration and the signed-in persona."""
    _require("openid" in _param("scope").split(), "scope must be openid.")
    _require(_param("response_type") == "id_token", "response_type must be id_token.")
    _require(_param("response_mode") == "form_post", "response_mode must be form_post.")
    _require(_param("prompt") == "none", "prompt must be none.")
    _require(bool(_param("nonce")), "A nonce is required.")
    tool = tool_by_client_id(db(), _param("client_id"))
    _require(tool is not None, "The client_id is not a tool registered with this Demo LMS.")
    assert tool is not None
    redirect_uri = _param("redirect_uri")
    _require(redirect_uri in tool.redirect_uris, "The redirect_uri is not one the tool registered.")
    login_hint = _param("login_hint")
    _require(bool(login_hint), "login_hint is missing: the launch must name the signed-in person.")
    try:
        hint = decode_hint(settings().secret_key, _param("lti_message_hint"))
    except HintError as exc:
        _require(False, str(exc))
        raise AssertionError from exc
    _require(hint.tool_id == tool.id, "The lti_message_hint was issued for another tool.")
    _require(use_hint(settings(), runtime().redis, _param("lti_message_hint")), "Invalid request")  # Moodle shape
    session = read_session()
    _require(
        session is not None and session.user_id == login_hint,
        "You are not signed in to the Demo LMS as this person. Sign in again from the Demo LMS page.",
    )
    member = db().scalar(
        select(DemoMember)
        .join(DemoCourse, DemoCourse.id == DemoMember.course_id)
        .where(DemoCourse.context_id == CONTEXT_ID, DemoMember.user_id == login_hint)
    )
    _require(member is not None, "This person is not in the course.")
    assert member is not None
    course = db().get(DemoCourse, member.course_id)
    assert course is not None
    _require(member.status == "Active", f"{member.name} is {member.status.lower()} in this course.")
    link = db().get(DemoLink, hint.link_id) if hint.link_id is not None else None
    if hint.message_type == DEEP_LINKING:
        _require(member.is_instructor, "Only the instructor can add assignments.")
    else:
        _require(
            link is not None and link.course_id == course.id and link.tool_id in (None, tool.id),
            "This link does not exist in the course any more.",
        )
    return AuthRequest(tool, member, course, hint, link, redirect_uri, _param("nonce"), _param("state"))


def _line_item_url(req: AuthRequest) -> str | None:
    if req.link is None:
        return None
    item_id = db().scalar(
        select(DemoLineItem.id).where(DemoLineItem.link_id == req.link.id, DemoLineItem.tool_id == req.tool.id).limit(1)
    )
    if item_id is None:
        return None
    return demo_url(settings(), f"/api/contexts/{req.course.context_id}/lineitems/{item_id}")


@bp.route("/auth", methods=["GET", "POST"])
@page
def auth() -> str:
    """OIDC authorization (implicit, form_post): answer the tool's login with a signed id_token."""
    req = check_auth_request()
    data = (
        encode_dl_data(settings().secret_key, req.course.id, req.member.user_id, req.tool.id)
        if req.hint.message_type == DEEP_LINKING
        else ""
    )
    claims = launch_claims(
        LaunchInput(
            issuer=issuer(settings()),
            tool=req.tool,
            member=req.member,
            course=req.course,
            message_type=req.hint.message_type,
            nonce=req.nonce,
            now=int(time.time()),
            link=req.link,
            line_item_url=_line_item_url(req),
            deep_link_data=data,
            return_url=demo_url(settings(), "/course"),
            roles=launch_roles(settings(), req.member),
        )
    )
    id_token = sign(db(), claims)
    db().add(
        DemoLaunch(
            member_id=req.member.id,
            tool_id=req.tool.id,
            link_id=req.link.id if req.link else None,
            message_type=req.hint.message_type,
        )
    )
    commit()
    return render_template(
        "demo_lms/auth_post.html",
        action=req.redirect_uri,
        id_token=id_token,
        state=req.state,
        storage_target=req.hint.storage_target,
    )
