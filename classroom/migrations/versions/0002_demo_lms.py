"""demo lms tables (development-only fake LMS; all tables prefixed demo_)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _bigid() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), primary_key=True)


def _fk(table: str, column: str, ref: str, ondelete: str, nullable: bool = False) -> sa.Column:
    """A foreign key column named like the models' naming convention."""
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{ref}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{ref}"),
        nullable=nullable,
    )


def _table(name: str, *columns: sa.Column | sa.Constraint) -> None:
    op.create_table(name, *columns, sa.PrimaryKeyConstraint("id", name=f"pk_{name}"))


def upgrade() -> None:
    _table(
        "demo_keys",
        _id(),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_jwk", JSONB(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("kid", name="uq_demo_keys_kid"),
    )
    _table(
        "demo_tools",
        _id(),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("client_name", sa.String(255), nullable=False),
        sa.Column("initiate_login_uri", sa.Text(), nullable=False),
        sa.Column("redirect_uris", JSONB(), nullable=False),
        sa.Column("jwks_uri", sa.Text(), nullable=False),
        sa.Column("target_link_uri", sa.Text(), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("scopes", JSONB(), nullable=False),
        sa.Column("messages", JSONB(), nullable=False),
        sa.Column("claims", JSONB(), nullable=False),
        sa.Column("registration", JSONB(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("client_id", name="uq_demo_tools_client_id"),
    )
    _table(
        "demo_registration_tokens",
        _id(),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        _fk("demo_registration_tokens", "tool_id", "demo_tools", "SET NULL", nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_demo_registration_tokens_token_hash"),
    )
    _table(
        "demo_courses",
        _id(),
        sa.Column("context_id", sa.String(255), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("context_id", name="uq_demo_courses_context_id"),
    )
    _table(
        "demo_members",
        _id(),
        _fk("demo_members", "course_id", "demo_courses", "CASCADE"),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("given_name", sa.String(128), nullable=False),
        sa.Column("family_name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("roles", JSONB(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("section", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("course_id", "user_id", name="uq_demo_members_course_user"),
        sa.UniqueConstraint("course_id", "email", name="uq_demo_members_course_email"),
        sa.CheckConstraint("status IN ('Active', 'Inactive', 'Deleted')", name="ck_demo_members_status"),
        sa.CheckConstraint("kind IN ('instructor', 'ta', 'student')", name="ck_demo_members_kind"),
    )
    op.create_index("ix_demo_members_course_id", "demo_members", ["course_id"])
    _table(
        "demo_links",
        _id(),
        _fk("demo_links", "course_id", "demo_courses", "CASCADE"),
        _fk("demo_links", "tool_id", "demo_tools", "CASCADE", nullable=True),
        sa.Column("resource_link_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("custom", JSONB(), nullable=False),
        sa.Column("due_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("resource_link_id", name="uq_demo_links_resource_link_id"),
        sa.CheckConstraint("kind IN ('navigation', 'assignment')", name="ck_demo_links_kind"),
    )
    op.create_index("ix_demo_links_course_id", "demo_links", ["course_id"])
    _table(
        "demo_line_items",
        _id(),
        _fk("demo_line_items", "course_id", "demo_courses", "CASCADE"),
        _fk("demo_line_items", "tool_id", "demo_tools", "CASCADE"),
        _fk("demo_line_items", "link_id", "demo_links", "SET NULL", nullable=True),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=True),
        sa.Column("tag", sa.String(255), nullable=True),
        sa.Column("start_at", TZ, nullable=True),
        sa.Column("end_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint("score_maximum > 0", name="ck_demo_line_items_score_maximum_positive"),
    )
    op.create_index("ix_demo_line_items_course_id", "demo_line_items", ["course_id"])
    _table(
        "demo_scores",
        _bigid(),
        _fk("demo_scores", "line_item_id", "demo_line_items", "CASCADE"),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("score_given", sa.Float(), nullable=True),
        sa.Column("score_maximum", sa.Float(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("activity_progress", sa.String(32), nullable=False),
        sa.Column("grading_progress", sa.String(32), nullable=False),
        sa.Column("timestamp", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_demo_scores_line_item_id", "demo_scores", ["line_item_id"])
    _table(
        "demo_access_tokens",
        _id(),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _fk("demo_access_tokens", "tool_id", "demo_tools", "CASCADE"),
        sa.Column("scopes", JSONB(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_demo_access_tokens_token_hash"),
    )
    _table(
        "demo_seen_jtis",
        _bigid(),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.UniqueConstraint("client_id", "jti", name="uq_demo_seen_jtis_client_jti"),
    )
    _table(
        "demo_launches",
        _bigid(),
        _fk("demo_launches", "member_id", "demo_members", "CASCADE"),
        _fk("demo_launches", "tool_id", "demo_tools", "CASCADE"),
        _fk("demo_launches", "link_id", "demo_links", "SET NULL", nullable=True),
        sa.Column("message_type", sa.String(40), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "demo_launches",
        "demo_seen_jtis",
        "demo_access_tokens",
        "demo_scores",
        "demo_line_items",
        "demo_links",
        "demo_members",
        "demo_courses",
        "demo_registration_tokens",
        "demo_tools",
        "demo_keys",
    ):
        op.drop_table(name)
