"""The Demo LMS's own first-party sign-in cookie (signed, not a Flask session) and its CSRF tokens."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import Response, abort, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from dev.demo_lms.models import DemoCourse, DemoMember
from dev.demo_lms.origins import PREFIX
from lti_app.runtime import db, settings

COOKIE = "demo_lms"
# Browsers that refuse Secure cookies on http://localhost (Safari) keep this Lax copy for the Demo LMS's own pages.
LAX_COOKIE = "demo_lms_lax"
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class DemoSession:
    """What the cookie says: a browser id (CSRF anchor) and the signed-in persona, if any."""

    sid: str
    user_id: str | None = None


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt=salt)


def read_session() -> DemoSession | None:
    """Return the cookie's session, or None when absent, forged or expired."""
    raw = request.cookies.get(COOKIE) or request.cookies.get(LAX_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer("demo-lms-session").loads(raw, max_age=MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
        return None
    user = data.get("u")
    return DemoSession(data["sid"], user if isinstance(user, str) else None)


def new_session(user_id: str | None = None) -> DemoSession:
    """A fresh browser id (rotated at every sign-in and sign-out)."""
    return DemoSession(secrets.token_urlsafe(18), user_id)


def write_session(response: Response, session: DemoSession) -> None:
    """Set the cookie: SameSite=None; Secure (allowed on http://localhost), plus a Lax copy.

    The tool's frame (another site) navigates to /auth and /deep-link-return; browsers treat a navigation
    started by a cross-site frame as cross-site, so a Lax cookie would not come along. Canvas's session
    cookie is SameSite=None for the same reason. It stays a first-party cookie: the top page is this site.
    """
    value = _serializer("demo-lms-session").dumps({"sid": session.sid, "u": session.user_id})
    response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, path=PREFIX, httponly=True, samesite="None", secure=True)
    response.set_cookie(
        LAX_COOKIE,
        value,
        max_age=MAX_AGE_S,
        path=PREFIX,
        httponly=True,
        samesite="Lax",
        secure=settings().secure_cookies,
    )


def csrf_token(session: DemoSession) -> str:
    """A signed token bound to the browser id, for hidden form fields."""
    return _serializer("demo-lms-csrf").dumps(session.sid)


def check_csrf() -> DemoSession:
    """Abort 400 unless the form's csrf field matches this browser's cookie; return the session."""
    session = read_session()
    try:
        sid = _serializer("demo-lms-csrf").loads(request.form.get("csrf", ""), max_age=MAX_AGE_S)
    except BadSignature:
        sid = None
    if session is None or not isinstance(sid, str) or not hmac.compare_digest(sid, session.sid):
        abort(400, "The form expired or did not come from this page. Go back, reload and try again.")
    return session


def signed_in_member(course: DemoCourse) -> DemoMember | None:
    """The persona the cookie names in this course, if any."""
    session = read_session()
    if session is None or session.user_id is None:
        return None
    return db().scalar(
        select(DemoMember).where(DemoMember.course_id == course.id, DemoMember.user_id == session.user_id)
    )
