"""Platforms (LMS registrations) and deployments: register, find, approve, remove."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import Deployment, DeploymentStatus, Platform


class PlatformError(ValueError):
    """Bad platform input (duplicate, unknown, unsafe URL)."""


@dataclass(frozen=True)
class PlatformInput:
    """Everything needed to trust a platform's launches and call its services."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    name: str = ""
    product: str = ""
    auth_audience: str | None = None
    accept_new_deployments: bool = False
    frame_origins: tuple[str, ...] = ()


def _check_urls(data: PlatformInput, allow_http: bool) -> None:
    for label, url in (
        ("auth_login_url", data.auth_login_url),
        ("auth_token_url", data.auth_token_url),
        ("key_set_url", data.key_set_url),
    ):
        if not url.startswith("https://") and not (allow_http and url.startswith("http://")):
            raise PlatformError(f"{label} must be an https:// URL, got {url!r}")


def _origin(url: str) -> str:
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


def default_frame_origins(data: PlatformInput) -> list[str]:
    """Origins that may frame the tool: given ones, else the issuer's and the auth host's (Canvas: its hosts)."""
    origins = list(data.frame_origins) or [_origin(data.issuer), _origin(data.auth_login_url)]
    if data.product == "canvas" and not data.frame_origins:
        origins.append("https://*.instructure.com")
    return sorted(set(o for o in origins if o.startswith(("https://", "http://"))))


def register_platform(
    session: Session, data: PlatformInput, *, allow_http: bool = False, actor: str = "cli"
) -> Platform:
    """Store a new registration; (issuer, client_id) must be new."""
    _check_urls(data, allow_http)
    if find_platform(session, data.issuer, data.client_id) is not None:
        raise PlatformError(f"A platform with issuer {data.issuer} and client_id {data.client_id} exists already.")
    fields = dict(data.__dict__)
    fields["frame_origins"] = default_frame_origins(data)
    platform = Platform(**fields)
    session.add(platform)
    session.flush()
    append_event(
        session,
        "platform.registered",
        subject=f"{data.issuer} {data.client_id}",
        details={"by": actor, "name": data.name, "product": data.product},
    )
    return platform


def find_platform(session: Session, issuer: str, client_id: str | None) -> Platform | None:
    """Look a registration up by (issuer, client_id); without client_id only if the issuer has one."""
    query = select(Platform).where(Platform.issuer == issuer)
    if client_id:
        return session.scalar(query.where(Platform.client_id == client_id))
    found = session.scalars(query.limit(2)).all()
    return found[0] if len(found) == 1 else None


def list_platforms(session: Session) -> list[Platform]:
    """All registrations, oldest first."""
    return list(session.scalars(select(Platform).order_by(Platform.id)))


def remove_platform(session: Session, platform_id: int, *, actor: str = "cli") -> None:
    """Delete a registration and its deployments (people and courses go with it)."""
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise PlatformError(f"No platform with id {platform_id}.")
    append_event(session, "platform.removed", subject=f"{platform.issuer} {platform.client_id}", details={"by": actor})
    session.delete(platform)
    session.flush()


def record_deployment(session: Session, platform: Platform, deployment_id: str) -> Deployment:
    """Return the deployment row, creating it (pending, or approved if the platform accepts new ones)."""
    status = DeploymentStatus.APPROVED if platform.accept_new_deployments else DeploymentStatus.PENDING
    stmt = (
        insert(Deployment)
        .values(
            platform_id=platform.id,
            deployment_id=deployment_id,
            status=status,
            created_at=utcnow(),
            approved_at=utcnow() if status is DeploymentStatus.APPROVED else None,
        )
        .on_conflict_do_nothing(constraint="uq_deployments_platform_deployment")
        .returning(Deployment.id)
    )
    new_id = session.scalar(stmt)
    if new_id is not None:
        append_event(
            session, "deployment.seen", subject=deployment_id, details={"platform": platform.id, "status": status.value}
        )
    dep = session.scalar(
        select(Deployment).where(Deployment.platform_id == platform.id, Deployment.deployment_id == deployment_id)
    )
    assert dep is not None
    return dep


def set_deployment_status(
    session: Session, platform_id: int, deployment_id: str, status: DeploymentStatus, *, actor: str = "cli"
) -> Deployment:
    """Approve or revoke a deployment (creating it if the admin approves ahead of the first launch)."""
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise PlatformError(f"No platform with id {platform_id}.")
    dep = record_deployment(session, platform, deployment_id)
    dep.status = status
    dep.approved_at = utcnow() if status is DeploymentStatus.APPROVED else dep.approved_at
    session.flush()
    append_event(
        session, f"deployment.{status.value}", subject=deployment_id, details={"platform": platform_id, "by": actor}
    )
    return dep
