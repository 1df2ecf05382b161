"""Files attached to outbox emails (the final report's PDF), and how a restore went.

`outbox_attachments`: one row per file of an outbox email (name, MIME type, bytes), deleted with its email.
`student_restores.outcome` ("", "restored", "failed"), `outcome_reason`, `restored_bytes`, `outcome_at`: what the
restored workspace reported (the EC2 agent in its heartbeat, the local runtime itself).

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
    op.add_column("student_restores", sa.Column("outcome", sa.String(16), nullable=False, server_default=""))
    op.add_column("student_restores", sa.Column("outcome_reason", sa.Text(), nullable=False, server_default=""))
    op.add_column("student_restores", sa.Column("restored_bytes", sa.BigInteger(), nullable=True))
    op.add_column("student_restores", sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("outcome_at", "restored_bytes", "outcome_reason", "outcome"):
        op.drop_column("student_restores", column)
    op.drop_index("ix_outbox_attachments_email_id", table_name="outbox_attachments")
    op.drop_table("outbox_attachments")
