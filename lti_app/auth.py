"""The short-lived signed tool token that replaces cookies after a launch, role checks, and CSRF.

Every page and API call carries the token (query `t`, form field `t`, or `Authorization: Bearer`).
It is bound to deployment, person, course and role; each request re-reads the enrollment, so a
dropped student or a revoked deployment loses access at once. Forms also carry a CSRF token derived
from the tool token; a cookie-based CSRF token would be lost where third-party cookies are blocked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from classroom.models import Course, Deployment, DeploymentStatus, Enrollment, EnrollmentStatus, Person
from classroom.roles import StaffLevel
from lti_app.errors import Forbidden, ToolError
from lti_app.runtime import db, settings
from lti_app.security import frame_for_platform

F = TypeVar("F", bound=Callable[..., Any])
_SALT = "cwc-tool-token-v1"


class NotSignedIn(ToolError):
    status = 401
    title = "Please open Cloud Workstation from your course"


@dataclass(frozen=True)
class ToolClaims:
    """What a tool token says."""

    launch_id: str
    deployment_pk: int
    person_id: int
    course_id: int
    level: str
    started: int
    jti: str


@dataclass(frozen=True)
class ToolContext:
    """The signed-in person for this request, as the database sees them now."""

    claims: ToolClaims
    person: Person
    course: Course
    enrollment: Enrollment

    @property
    def level(self) -> StaffLevel:
        return self.enrollment.level


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt=_SALT)


def issue_token(
    *, launch_id: str, deployment_pk: int, person_id: int, course_id: int, level: str, started: int | None = None
) -> str:
    """Sign a tool token; `started` (the launch time) caps how long tokens can be renewed."""
    payload = {
        "l": launch_id,
        "d": deployment_pk,
        "p": person_id,
        "c": course_id,
        "r": level,
        "s": started or int(time.time()),
        "j": secrets.token_urlsafe(8),
    }
    return _serializer().dumps(payload)


def read_token(token: str) -> ToolClaims:
    """Verify signature and age; raise NotSignedIn with a helpful message otherwise."""
    cfg = settings()
    try:
        data = _serializer().loads(token, max_age=cfg.tool_token_ttl_s)
    except SignatureExpired as exc:
        raise NotSignedIn("Your session has expired. Open Cloud Workstation from your course again.") from exc
    except BadSignature as exc:
        raise NotSignedIn(
            "This page needs a launch from your course. Open Cloud Workstation from your course."
        ) from exc
    claims = ToolClaims(data["l"], data["d"], data["p"], data["c"], data["r"], data["s"], data["j"])
    if time.time() - claims.started > cfg.tool_token_max_age_s:
        raise NotSignedIn("Your session has expired. Open Cloud Workstation from your course again.")
    return claims


def _presented_token() -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.form.get("t") or request.args.get("t") or ""


def csrf_token(tool_token: str) -> str:
    """The CSRF value for forms on a page rendered with this tool token."""
    return hmac.new(settings().secret_key.encode(), b"csrf:" + tool_token.encode(), hashlib.sha256).hexdigest()


def _check_csrf(tool_token: str) -> None:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    if not sent or not hmac.compare_digest(sent, csrf_token(tool_token)):
        raise Forbidden("This form has expired or did not come from Cloud Workstation. Reload the page and try again.")


def load_context(token: str) -> ToolContext:
    """Resolve the token to live rows; refuse dropped members and revoked deployments."""
    claims = read_token(token)
    session = db()
    row = session.execute(
        select(Enrollment, Person, Course, Deployment)
        .join(Person, Person.id == Enrollment.person_id)
        .join(Course, Course.id == Enrollment.course_id)
        .join(Deployment, Deployment.id == claims.deployment_pk)
        .where(Enrollment.person_id == claims.person_id, Enrollment.course_id == claims.course_id)
    ).first()
    if row is None:
        raise NotSignedIn("We could not find your enrollment. Open Cloud Workstation from your course again.")
    enrollment, person, course, deployment = row
    if deployment.status is not DeploymentStatus.APPROVED or deployment.platform_id != course.platform_id:
        raise Forbidden("This course's installation of Cloud Workstation is not approved.")
    if enrollment.status is not EnrollmentStatus.ACTIVE:
        raise Forbidden("You are no longer enrolled in this course in Cloud Workstation.")
    return ToolContext(claims, person, course, enrollment)


def requires(check: Callable[[StaffLevel], bool] | None = None) -> Callable[[F], F]:
    """Decorator: a valid tool token, an active enrollment, `check(level)` true, CSRF on writes."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _presented_token()
            if not token:
                raise NotSignedIn("This page needs a launch from your course. Open Cloud Workstation from your course.")
            ctx = load_context(token)
            frame_for_platform(ctx.course.platform_id)  # before the role check: its refusal is framed alike
            if check is not None and not check(ctx.level):
                raise Forbidden("Your role in this course does not allow this.")
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                _check_csrf(token)
            g.ctx = ctx
            g.tool_token = renew(ctx)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def renew(ctx: ToolContext) -> str:
    """A fresh token for links on the page being rendered (same launch, same start time)."""
    c = ctx.claims
    return issue_token(
        launch_id=c.launch_id,
        deployment_pk=c.deployment_pk,
        person_id=c.person_id,
        course_id=c.course_id,
        level=ctx.level.value,
        started=c.started,
    )


def current() -> ToolContext:
    """The request's ToolContext (set by @requires)."""
    return g.ctx  # type: ignore[no-any-return]
