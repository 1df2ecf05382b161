"""The audit trail becomes one hash chain per course (and one for events without a course), so appends in
unrelated courses never wait on one lock. The single chain so far is kept, frozen, as the legacy chain.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
LEGACY_CHAIN = -1


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("chain >= -1", name=op.f("ck_audit_chain_heads_chain_key")),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_heads")),
    )
    # The one chain written so far, frozen at its last event: verify walks it, then the per-course chains.
    op.execute(
        f"""
        INSERT INTO audit_chain_heads (chain, prev_hash, hash, last_event_id)
        SELECT {LEGACY_CHAIN}, h.prev_hash, h.hash, COALESCE((SELECT max(id) FROM audit_events), 0)
        FROM audit_chain_head h WHERE h.id = 1
        """
    )
    op.drop_table("audit_chain_head")


def downgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    # Per-course chains cannot be merged back into one: the single chain restarts after the legacy one.
    op.execute(
        f"""
        INSERT INTO audit_chain_head (id, prev_hash, hash)
        SELECT 1, prev_hash, hash FROM audit_chain_heads WHERE chain = {LEGACY_CHAIN}
        """
    )
    op.drop_table("audit_chain_heads")
