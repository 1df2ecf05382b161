"""Participant access without an LMS: a signed, cookie-less participant token (the personal link), turned into an
ordinary tool token for the student pages, and the join form's CSRF check (a double-submit cookie: the join page
is a first-party top-level page, so a SameSite=Strict cookie works there, unlike inside an LMS iframe).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import Response, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from classroom.models import Course, Enrollment, EnrollmentStatus, Workshop, WorkshopParticipant
from lti_app.auth import issue_token
from lti_app.errors import Forbidden, ToolError
from lti_app.runtime import db, settings

_SALT = "cwc-workshop-participant-v1"
JOIN_COOKIE = "cwc_join"


@dataclass(frozen=True)
class ParticipantContext:
    """The participant a personal link names, with their workshop and its course."""

    participant: WorkshopParticipant
    workshop: Workshop
    course: Course
    enrollment: Enrollment


def participant_token(participant: WorkshopParticipant) -> str:
    """The personal link's token: bound to the participant and their person row (their access ends with them)."""
    return URLSafeSerializer(settings().secret_key, salt=_SALT).dumps({"w": participant.id, "p": participant.person_id})


def load_participant(token: str) -> ParticipantContext:
    """Resolve a personal link; refuse a forged one and one whose access has ended."""
    try:
        data = URLSafeSerializer(settings().secret_key, salt=_SALT).loads(token)
        participant_id, person_id = int(data["w"]), int(data["p"])
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise Forbidden("This workshop link is not valid. Use the link you were given when you joined.") from exc
    row = (
        db()
        .execute(
            select(WorkshopParticipant, Workshop, Course, Enrollment)
            .join(Workshop, Workshop.id == WorkshopParticipant.workshop_id)
            .join(Course, Course.id == Workshop.course_id)
            .join(
                Enrollment,
                (Enrollment.course_id == Course.id) & (Enrollment.person_id == WorkshopParticipant.person_id),
            )
            .where(WorkshopParticipant.id == participant_id, WorkshopParticipant.person_id == person_id)
        )
        .first()
    )
    if row is None:
        raise Forbidden("This workshop link is not valid. Use the link you were given when you joined.")
    ctx = ParticipantContext(*row)
    if ctx.enrollment.status is not EnrollmentStatus.ACTIVE:
        raise ToolError("Your access to this workshop has ended; its workspaces are archived and removed.", status=410,
                        title="This workshop is over")  # fmt: skip
    return ctx


def tool_token_for(ctx: ParticipantContext) -> str:
    """An ordinary tool token for the participant (the student pages check it like any launch's)."""
    return issue_token(launch_id=f"workshop:{ctx.workshop.id}", deployment_pk=ctx.course.deployment_id,
                       person_id=ctx.participant.person_id, course_id=ctx.course.id, level="student")  # fmt: skip


def _mac(value: str) -> str:
    return hmac.new(settings().secret_key.encode(), b"workshop-join:" + value.encode(), hashlib.sha256).hexdigest()


def join_csrf(response: Response) -> str:
    """Set the join page's cookie (kept if present) and return the form's matching CSRF value."""
    nonce = request.cookies.get(JOIN_COOKIE) or secrets.token_urlsafe(16)
    response.set_cookie(JOIN_COOKIE, nonce[:64], max_age=3600, httponly=True, samesite="Strict",
                        secure=settings().secure_cookies, path="/workshop")  # fmt: skip
    return _mac(nonce[:64])


def check_join_csrf() -> None:
    """The form's CSRF value must match this browser's join cookie."""
    nonce = request.cookies.get(JOIN_COOKIE, "")
    sent = request.form.get("csrf_token", "")
    if not nonce or not sent or not hmac.compare_digest(sent, _mac(nonce)):
        raise Forbidden("This form has expired or did not come from Cloud Workstation. Reload the page and try again.")


def participant_csrf(token: str) -> str:
    """The CSRF value for forms on a participant's page (derived from their personal token)."""
    return _mac("participant:" + token)


def check_participant_csrf(token: str) -> None:
    """A participant form's CSRF value must match their personal token."""
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent, participant_csrf(token)):
        raise Forbidden("This form has expired or did not come from Cloud Workstation. Reload the page and try again.")
