"""The tool's own RSA signing keys (JWKS publishes current, next and recently retired)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow


class KeyStatus(enum.StrEnum):
    """Lifecycle: next -> current -> retired (published until its grace period ends)."""

    NEXT = "next"
    CURRENT = "current"
    RETIRED = "retired"


class ToolKey(Base):
    """One signing key pair; exactly one is current (enforced by a partial unique index)."""

    __tablename__ = "tool_keys"
    __table_args__ = (
        Index("uq_tool_keys_one_current", "status", unique=True, postgresql_where=text("status = 'current'")),
        Index("uq_tool_keys_one_next", "status", unique=True, postgresql_where=text("status = 'next'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSONB)
    status: Mapped[KeyStatus] = mapped_column(
        Enum(KeyStatus, name="key_status", values_callable=lambda e: [m.value for m in e])
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True)
