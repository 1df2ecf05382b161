"""Demo LMS tables (all named demo_*), on their own metadata so the tool's domain schema never includes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from classroom.db import NAMING, utcnow

MEMBER_STATUSES = ("Active", "Inactive", "Deleted")
MEMBER_KINDS = ("instructor", "ta", "student")
LINK_KINDS = ("navigation", "assignment")


class DemoBase(DeclarativeBase):
    """Base of the Demo LMS models (separate from classroom.db.Base on purpose)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
    }


class DemoKey(DemoBase):
    """The platform's RSA signing key (2048 bits); every row is published in the JWKS."""

    __tablename__ = "demo_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemoTool(DemoBase):
    """A tool registered through Dynamic Registration."""

    __tablename__ = "demo_tools"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    deployment_id: Mapped[str] = mapped_column(String(64))
    client_name: Mapped[str] = mapped_column(String(255))
    initiate_login_uri: Mapped[str] = mapped_column(Text)
    redirect_uris: Mapped[list[Any]] = mapped_column()
    jwks_uri: Mapped[str] = mapped_column(Text)
    target_link_uri: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[Any]] = mapped_column()
    messages: Mapped[list[Any]] = mapped_column()
    claims: Mapped[list[Any]] = mapped_column()
    registration: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemoRegistrationToken(DemoBase):
    """A one-time bearer token for the registration endpoint (only its hash is kept)."""

    __tablename__ = "demo_registration_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    tool_id: Mapped[int | None] = mapped_column(ForeignKey("demo_tools.id", ondelete="SET NULL"), nullable=True)


class DemoCourse(DemoBase):
    """A course (LTI context)."""

    __tablename__ = "demo_courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    context_id: Mapped[str] = mapped_column(String(255), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemoMember(DemoBase):
    """A persona enrolled in a course; user_id is the LTI `sub` and the login_hint."""

    __tablename__ = "demo_members"
    __table_args__ = (
        UniqueConstraint("course_id", "user_id", name="uq_demo_members_course_user"),
        UniqueConstraint("course_id", "email", name="uq_demo_members_course_email"),
        CheckConstraint("status IN ('Active', 'Inactive', 'Deleted')", name="status"),
        CheckConstraint("kind IN ('instructor', 'ta', 'student')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("demo_courses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    given_name: Mapped[str] = mapped_column(String(128))
    family_name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))
    section: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="Active")
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_instructor(self) -> bool:
        """True for the course's instructor persona (not the TAs)."""
        return self.kind == "instructor"

    @property
    def is_staff(self) -> bool:
        """True for the instructor and the TAs."""
        return self.kind in ("instructor", "ta")


class DemoLink(DemoBase):
    """A course link to the tool: the navigation link, or an assignment made by deep linking."""

    __tablename__ = "demo_links"
    __table_args__ = (CheckConstraint("kind IN ('navigation', 'assignment')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("demo_courses.id", ondelete="CASCADE"), index=True)
    tool_id: Mapped[int | None] = mapped_column(ForeignKey("demo_tools.id", ondelete="CASCADE"), nullable=True)
    resource_link_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemoLineItem(DemoBase):
    """An AGS line item (gradebook column), owned by the tool that made it."""

    __tablename__ = "demo_line_items"
    __table_args__ = (CheckConstraint("score_maximum > 0", name="score_maximum_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("demo_courses.id", ondelete="CASCADE"), index=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("demo_tools.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("demo_links.id", ondelete="SET NULL"), nullable=True)
    label: Mapped[str] = mapped_column(String(255))
    score_maximum: Mapped[float] = mapped_column(Float)
    resource_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    start_at: Mapped[datetime | None] = mapped_column(nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemoScore(DemoBase):
    """One score posted by the tool; every post is kept, the latest per user is the result."""

    __tablename__ = "demo_scores"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line_item_id: Mapped[int] = mapped_column(ForeignKey("demo_line_items.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    activity_progress: Mapped[str] = mapped_column(String(32))
    grading_progress: Mapped[str] = mapped_column(String(32))
    timestamp: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemoAccessToken(DemoBase):
    """An opaque OAuth2 access token (hash only) for the NRPS and AGS services."""

    __tablename__ = "demo_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("demo_tools.id", ondelete="CASCADE"))
    scopes: Mapped[list[Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class DemoSeenJti(DemoBase):
    """A jti (client assertion) or nonce (deep-linking response) already used: replays are refused."""

    __tablename__ = "demo_seen_jtis"
    __table_args__ = (UniqueConstraint("client_id", "jti", name="uq_demo_seen_jtis_client_jti"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column()


class DemoLaunch(DemoBase):
    """An id_token the platform issued (a log for the admin page and tests)."""

    __tablename__ = "demo_launches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("demo_members.id", ondelete="CASCADE"))
    tool_id: Mapped[int] = mapped_column(ForeignKey("demo_tools.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("demo_links.id", ondelete="SET NULL"), nullable=True)
    message_type: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
