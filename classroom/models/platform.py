"""LMS platforms (registrations) and their deployments."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from classroom.db import Base, utcnow


class DeploymentStatus(enum.StrEnum):
    """An unknown deployment waits for an administrator: every deployment can spend money."""

    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"


class Platform(Base):
    """One LTI 1.3 registration, keyed by (issuer, client_id)."""

    __tablename__ = "platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_platforms_issuer_client"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    product: Mapped[str] = mapped_column(String(64), default="")
    auth_login_url: Mapped[str] = mapped_column(Text)
    auth_token_url: Mapped[str] = mapped_column(Text)
    auth_audience: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_set_url: Mapped[str] = mapped_column(Text)
    accept_new_deployments: Mapped[bool] = mapped_column(Boolean, default=False)
    # Origins allowed to frame the tool (CSP frame-ancestors): the LMS pages, not only its OIDC host.
    frame_origins: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def origin(self) -> str:
        """Scheme://host[:port] of the platform's OIDC auth URL (postMessage target, CSP)."""
        from urllib.parse import urlparse

        parts = urlparse(self.auth_login_url)
        return f"{parts.scheme}://{parts.netloc}"


class Deployment(Base):
    """A deployment_id under a platform; only approved ones may launch."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id", name="uq_deployments_platform_deployment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[DeploymentStatus] = mapped_column(
        Enum(DeploymentStatus, name="deployment_status", values_callable=lambda e: [m.value for m in e]),
        default=DeploymentStatus.PENDING,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)

    platform: Mapped[Platform] = relationship(back_populates="deployments")
