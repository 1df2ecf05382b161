"""Invites for LTI Dynamic Registration, and storing what a platform returns when it registers the tool."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import DeploymentStatus, Platform, RegistrationInvite
from classroom.services.platforms import PlatformInput, register_platform, set_deployment_status


class InviteError(PermissionError):
    """The invite is unknown, expired or used."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(
    session: Session, *, note: str = "", valid_for: timedelta = timedelta(days=1), accept_new_deployments: bool = False
) -> str:
    """Create a one-time invite and return its token (shown once; only the hash is stored)."""
    token = secrets.token_urlsafe(24)
    session.add(
        RegistrationInvite(
            token_hash=_hash(token),
            note=note[:255],
            expires_at=utcnow() + valid_for,
            accept_new_deployments=accept_new_deployments,
        )
    )
    session.flush()
    append_event(session, "registration.invite_created", subject=note[:255])
    return token


def check_invite(session: Session, token: str, *, lock: bool = False) -> RegistrationInvite:
    """Return the invite if it can still be used, else raise InviteError."""
    query = select(RegistrationInvite).where(RegistrationInvite.token_hash == _hash(token or ""))
    invite = session.scalar(query.with_for_update() if lock else query)
    if invite is None:
        raise InviteError("This registration link is not valid. Ask the tool's administrator for a new one.")
    if invite.used_at is not None:
        raise InviteError("This registration link was used already. Ask the tool's administrator for a new one.")
    if invite.expires_at <= utcnow():
        raise InviteError("This registration link has expired. Ask the tool's administrator for a new one.")
    return invite


def complete_registration(
    session: Session, token: str, data: PlatformInput, deployment_id: str | None, *, allow_http: bool = False
) -> Platform:
    """Use the invite: store the platform and approve the deployment it returned (flushes)."""
    invite = check_invite(session, token, lock=True)
    data = PlatformInput(**{**data.__dict__, "accept_new_deployments": invite.accept_new_deployments})
    platform = register_platform(session, data, allow_http=allow_http, actor="dynamic-registration")
    if deployment_id:
        set_deployment_status(
            session, platform.id, deployment_id, DeploymentStatus.APPROVED, actor="dynamic-registration"
        )
    invite.used_at, invite.platform_id = utcnow(), platform.id
    session.flush()
    return platform
