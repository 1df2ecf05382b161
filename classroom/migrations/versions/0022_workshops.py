"""Workshops (issue 20 item 7): a walk-in workshop is a course of its own; this adds the workshop and its
participants (the access code is stored as its SHA-256 only).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=20, scale=12)
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "workshops",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("origin_course_id", sa.Integer(), sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("organiser_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_participants", sa.Integer(), nullable=False),
        sa.Column("budget", MONEY, nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("extension_days", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extension_daily_price", MONEY, nullable=False, server_default="0"),
        sa.Column("extension_allowance", MONEY, nullable=False, server_default="0"),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("course_id", name="uq_workshops_course_id"),
        sa.UniqueConstraint("code_hash", name="uq_workshops_code_hash"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_workshops_times"),
        sa.CheckConstraint("max_participants BETWEEN 1 AND 500", name="ck_workshops_max_participants"),
        sa.CheckConstraint("budget > 0", name="ck_workshops_budget"),
        sa.CheckConstraint("extension_days BETWEEN 0 AND 7", name="ck_workshops_extension_days"),
        sa.CheckConstraint(
            "extension_daily_price >= 0 AND extension_allowance >= 0", name="ck_workshops_extension_money"
        ),
    )
    op.create_index("ix_workshops_origin_course_id", "workshops", ["origin_course_id"])
    op.create_table(
        "workshop_participants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workshop_id", sa.Integer(), sa.ForeignKey("workshops.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, server_default=""),
        sa.Column("extension", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.UniqueConstraint("person_id", name="uq_workshop_participants_person"),
    )
    op.create_index("ix_workshop_participants_workshop_id", "workshop_participants", ["workshop_id"])


def downgrade() -> None:
    op.drop_table("workshop_participants")
    op.drop_table("workshops")
