"""Files attached to outbox emails (the final report's PDF).

`outbox_attachments`: one row per file of an outbox email (name, MIME type, bytes), deleted with its email.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_attachments",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "email_id", sa.BigInteger(), sa.ForeignKey("outbox_emails.id", ondelete="CASCADE"), nullable=False
        ),  # fmt: skip
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_outbox_attachments_email_id", "outbox_attachments", ["email_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_attachments_email_id", table_name="outbox_attachments")
    op.drop_table("outbox_attachments")
