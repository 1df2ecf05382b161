"""LTI endpoints: login initiation, launch, JWKS, Canvas configuration, Dynamic Registration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import jwt
from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from pylti1p3.exception import LtiException
from sqlalchemy import select

from classroom.claims import LaunchClaims, parse_claims
from classroom.models import CoursePolicy, DeploymentStatus, KeyStatus, Platform, ToolKey
from classroom.roles import StaffLevel, can_configure
from classroom.services.keys import ensure_keys, published_jwks
from classroom.services.launches import DeploymentNoLongerApproved, LaunchTarget, record_launch
from classroom.services.platforms import record_deployment
from lms_sync.triggers import after_launch
from lti_app.auth import issue_token
from lti_app.errors import Forbidden, LaunchRejected
from lti_app.lti.launch import DeploymentNotApproved, HardenedMessageLaunch, LaunchInvalid
from lti_app.lti.login import handle_login
from lti_app.lti.services import key_cache, login_store, tool_conf
from lti_app.lti.state import cookie_name, storage_key
from lti_app.runtime import after_commit, commit, db, runtime, settings
from lti_app.security import forget_frame_origins, frame_for_platform, registration_page

log = logging.getLogger(__name__)
bp = Blueprint("lti", __name__)

VALIDATION_ERRORS = (LaunchInvalid, LtiException, jwt.PyJWTError, KeyError, ValueError, TypeError, AssertionError)


@bp.route("/lti/login", methods=["GET", "POST"])
def login() -> Response:
    """OIDC third-party initiated login (Moodle posts, others GET)."""
    return handle_login()


def _missing_binding(state: str) -> Response | tuple[str, int]:
    """No cookie came back: try platform storage, else finish the launch in a new window (parked)."""
    pending = login_store().peek(state)
    if pending is None:
        raise LaunchRejected("This sign-in has expired or was already used. Open the link in your course again.")
    platform = db().get(Platform, pending.platform_id)
    assert platform is not None
    target = request.form.get("lti_storage_target") or pending.login_params.get("lti_storage_target")
    if target and not request.form.get("cwc_storage_tried"):
        return render_template(
            "lti/launch_storage.html",
            id_token=request.form.get("id_token", ""),
            state=state,
            key=storage_key(state),
            platform_origin=platform.origin,
            target=target,
            action=url_for("lti.launch"),
        )
    from lti_app.lti.new_window import park_launch

    return park_launch(validated_launch(state, "", unbound=True))


def _admit_deployment(platform_id: int, deployment_id: str) -> bool:
    """Record a deployment seen for the first time; True if it is approved (platform accepts new ones)."""
    platform = db().get(Platform, platform_id)
    assert platform is not None
    dep = record_deployment(db(), platform, deployment_id)
    db().flush()
    return dep.status is DeploymentStatus.APPROVED


def _validate_framed(message: HardenedMessageLaunch) -> None:
    """Validate; once the login's platform is known, only that platform may frame the answer (even a refusal)."""
    try:
        message.validate()
    finally:
        platform_id = message.known_platform_id()
        if platform_id is not None:
            frame_for_platform(platform_id)


def validated_launch(state: str, binding: str, *, unbound: bool = False) -> HardenedMessageLaunch:
    """Validate the posted id_token against its login (refusals become readable 4xx pages, nothing written)."""
    cfg = settings()
    message = HardenedMessageLaunch(
        {"id_token": request.form.get("id_token", ""), "state": state},
        tool_conf(),
        redis=runtime().redis,
        store=login_store(),
        keys=key_cache(),
        binding=binding,
        leeway_s=cfg.clock_leeway_s,
        launch_ttl_s=cfg.tool_token_max_age_s,
        unbound=unbound,
        admit_deployment=_admit_deployment,
    )
    try:
        _validate_framed(message)
    except DeploymentNotApproved as exc:
        commit()  # the pending deployment is recorded for the administrator; nothing else was written
        raise LaunchRejected(
            exc.args[0] + " Your LMS administrator has been asked to approve it.",
            status=403,
            title="Waiting for approval",
        ) from exc
    except VALIDATION_ERRORS as exc:
        log.info("launch rejected: %s: %s", type(exc).__name__, exc)
        raise LaunchRejected(
            str(exc)
            if isinstance(exc, LaunchInvalid)
            else "The launch could not be verified. Open the link in your course again."
        ) from exc
    return message


@bp.post("/lti/launch")
def launch() -> Response | tuple[str, int]:
    """Validate the id_token against its login, record the launch, and hand over a tool token."""
    state = request.form.get("state", "")
    binding = request.form.get("cwc_binding") or request.cookies.get(cookie_name(state)) or ""
    if not binding:
        return _missing_binding(state)
    message = validated_launch(state, binding)
    deployment = message.get_tool_conf().deployment
    assert deployment is not None
    target = LaunchTarget(message.registration_platform_id(), deployment.id, deployment.deployment_id)
    response = finish_launch(parse_claims(message.get_launch_data()), target, message.get_launch_id(), message)
    response.delete_cookie(cookie_name(state), path="/lti/")
    return response


def finish_launch(claims: LaunchClaims, target: LaunchTarget, launch_id: str, message: Any = None) -> Response:
    """Record a verified launch and send the person to their page with a fresh tool token.

    `message`, when given, saves its launch data once the launch is accepted (a parked launch saved it already).
    """
    try:
        result = record_launch(db(), target, claims)
    except DeploymentNoLongerApproved:
        tool_conf().registry.forget_deployment(target.platform_id, target.deployment_id)
        raise
    after_commit(
        after_launch(
            db(),
            runtime().redis,
            result.course_id,
            claims,
            result.level,
            stale_after_s=settings().roster_stale_after_s,
            person_id=result.person_id,
        )
    )
    if claims.is_deep_linking and not can_configure(result.level):
        raise Forbidden("Only instructors can add Cloud Workstation assignments.")
    if message is not None:
        message.save_launch_data()
    commit()
    token = issue_token(
        launch_id=launch_id,
        deployment_pk=target.deployment_pk,
        person_id=result.person_id,
        course_id=result.course_id,
        level=result.level.value,
    )
    if claims.is_deep_linking:
        endpoint = "deep_link.picker"
    elif result.level is StaffLevel.STUDENT:  # a course link goes to that link's workspace (the first click starts it)
        endpoint = "workspaces.mine"
    elif can_configure(result.level) and db().get(CoursePolicy, result.course_id) is None:
        endpoint = "setup.wizard"  # the owner's first launch: set the course up before anything can be spent
    else:
        endpoint = "pages.home"
    return redirect(url_for(endpoint, t=token), code=303)


@bp.get("/.well-known/jwks.json")
@bp.get("/lti/jwks")
def jwks() -> Response:
    """The tool's public keys: current, next, and retired ones within their grace period."""
    session = db()
    if not session.scalar(select(ToolKey.id).where(ToolKey.status == KeyStatus.CURRENT)):
        ensure_keys(session)  # first start: create the current and next keys
        commit()
    keys = published_jwks(session, grace=timedelta(days=settings().key_grace_period_days))
    response = jsonify(keys)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/lti/config/canvas.json")
def canvas_config() -> Response:
    """Canvas developer-key JSON (paste the URL under 'Enter URL')."""
    from lti_app.lti.registration import canvas_developer_key

    return jsonify(canvas_developer_key(settings()))


@bp.get("/lti/register")
def dynamic_registration() -> str:
    """LTI Dynamic Registration: needs a one-time invite from the tool's administrator."""
    from classroom.services.registration import check_invite, complete_registration
    from lti_app.lti.registration import ToolDynamicRegistration

    invite = request.args.get("invite", "")
    config_url = request.args.get("openid_configuration", "")
    registration_page(config_url)  # the LMS shows this page in its own frame; an error page is never framed
    check_invite(db(), invite)
    if not config_url:
        raise LaunchRejected(
            "Start the registration from your LMS: it adds the openid_configuration parameter.",
            status=400,
            title="Registration incomplete",
        )
    cfg = settings()
    if cfg.is_production and not config_url.startswith("https://"):
        raise LaunchRejected("The LMS configuration URL must be https.", status=400)
    flow = ToolDynamicRegistration(cfg, config_url, request.args.get("registration_token") or None)
    data, deployment_id = flow.run()
    platform = complete_registration(db(), invite, data, deployment_id, allow_http=not cfg.is_production)
    commit()
    forget_frame_origins()  # the new platform may frame the tool right away
    runtime().registry.forget()
    return render_template("lti/registration_done.html", platform=platform, deployment_id=deployment_id)
