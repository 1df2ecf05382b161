"""The "open in a new window" fallback: finish a verified launch in a top-level window, without replaying the login.

The launch arrived in the LMS iframe without its browser binding (third-party cookies blocked, no platform
storage: Moodle 4.5). It was verified and parked (lti_app.lti.parked); the page links to /lti/resume with the
parked launch's one-time secret. Opening that link (a top-level window, so first-party cookies work) binds the
launch to a fresh cookie and asks the person to continue as themself; continuing claims it with that cookie.
When it cannot be claimed (expired, used, another window) the page says to open the link in the course again.
"""

from __future__ import annotations

import secrets

from flask import Response, render_template, request, url_for

from classroom.claims import parse_claims
from classroom.services.launches import LaunchTarget
from lti_app.errors import LaunchRejected
from lti_app.lti.launch import HardenedMessageLaunch, RedisLaunchDataStorage
from lti_app.lti.parked import COOKIE, ParkedLaunch, ParkedLaunches
from lti_app.lti.views import bp, finish_launch
from lti_app.runtime import runtime, settings

RELAUNCH = (
    "This sign-in link has expired, was used already, or was opened in another window. "
    "Open Cloud Workstation from your course again."
)


class _SaveParked:
    """Saves a claimed launch's data under its launch id, as HardenedMessageLaunch.save_launch_data does."""

    def __init__(self, parked: ParkedLaunch) -> None:
        self.parked = parked

    def save_launch_data(self) -> None:
        storage = RedisLaunchDataStorage(runtime().redis)
        storage.set_value(self.parked.launch_id, self.parked.body, exp=settings().tool_token_max_age_s)


def _parked() -> ParkedLaunches:
    return ParkedLaunches(runtime().redis)


def park_launch(message: HardenedMessageLaunch) -> tuple[str, int]:
    """Park the verified launch and offer the link that finishes it in a new window (nothing else is written)."""
    deployment = message.get_tool_conf().deployment
    assert deployment is not None
    body = message.get_launch_data()
    claims = parse_claims(body)
    secret = _parked().park(
        ParkedLaunch(
            launch_id=message.get_launch_id(),
            platform_id=message.registration_platform_id(),
            deployment_pk=deployment.id,
            deployment_id=deployment.deployment_id,
            person_name=claims.name or claims.given_name or "you",
            course_title=claims.context_title or claims.context_label or "your course",
            body=body,
        )
    )
    # 401: this frame is not signed in (the launch is refused here, as before); the page offers the new window
    return render_template("lti/new_window.html", resume_url=url_for("lti.resume", p=secret)), 401


@bp.get("/lti/resume")
def resume() -> Response:
    """The new window: bind the parked launch to a fresh first-party cookie and ask to continue."""
    secret = request.args.get("p", "")
    cookie = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
    parked = _parked().bind(secret, cookie)
    if parked is None:
        raise LaunchRejected(RELAUNCH, status=410, title="Open Cloud Workstation from your course")
    response = Response(render_template("lti/resume.html", parked=parked, secret=secret))
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=_parked().ttl_s,
        path=url_for("lti.resume"),
        httponly=True,
        secure=settings().secure_cookies,
        samesite="Lax",  # a top-level window: first-party; a cross-site POST cannot carry it
    )
    return response


@bp.post("/lti/resume")
def claim() -> Response:
    """Claim the parked launch with this window's cookie (one use) and finish it here."""
    parked = _parked().claim(request.form.get("p", ""), request.cookies.get(COOKIE, ""))
    if parked is None:
        raise LaunchRejected(RELAUNCH, status=410, title="Open Cloud Workstation from your course")
    target = LaunchTarget(parked.platform_id, parked.deployment_pk, parked.deployment_id)
    response = finish_launch(parse_claims(parked.body), target, parked.launch_id, _SaveParked(parked))
    response.delete_cookie(COOKIE, path=url_for("lti.resume"))
    return response
