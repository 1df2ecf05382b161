"""One-time invitations that let an LMS administrator register the tool by Dynamic Registration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow


class RegistrationInvite(Base):
    """A single-use invite; only its SHA-256 is stored."""

    __tablename__ = "registration_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    accept_new_deployments: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    platform_id: Mapped[int | None] = mapped_column(nullable=True)
