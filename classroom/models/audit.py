"""Append-only audit log; each event carries the hash of the previous one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from classroom.db import Base, utcnow


class AuditEvent(Base):
    """One audited action. UPDATE and DELETE are refused by a database trigger."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(128))
    # Plain ids, no foreign keys: the log outlives the rows it speaks of.
    actor_person_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    course_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    subject: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChainHead(Base):
    """Each chain's newest hash, one row per chain: its row lock orders appends to that chain only.

    Chains: one per course (chain = course id), 0 for events without a course, and -1 for the single chain
    written before migration 0009, frozen at last_event_id. An append reads the previous hash and writes the
    new one in a single upsert; a verifier can tell when events were cut off the end of a chain.
    """

    __tablename__ = "audit_chain_heads"
    __table_args__ = (CheckConstraint("chain >= -1", name="chain_key"),)

    chain: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    last_event_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
