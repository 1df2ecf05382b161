"""The audit chain's head in one row, so an append is one statement (no advisory lock, no newest-event query).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    # Start from the newest event (or the genesis hash on an empty log).
    op.execute(
        f"""
        INSERT INTO audit_chain_head (id, prev_hash, hash)
        SELECT 1, COALESCE(newest.prev_hash, '{GENESIS}'), COALESCE(newest.hash, '{GENESIS}')
        FROM (SELECT 1) one LEFT JOIN (
            SELECT prev_hash, hash FROM audit_events ORDER BY id DESC LIMIT 1
        ) newest ON true
        """
    )


def downgrade() -> None:
    op.drop_table("audit_chain_head")
