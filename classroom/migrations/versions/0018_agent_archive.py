"""The home archive made by the workspace's agent: the retire flow's request and the agent's report.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COLUMNS = (
    ("archive_requested_at", sa.DateTime(timezone=True)),
    ("archive_reported_sha256", sa.String(length=64)),
    ("archive_reported_bytes", sa.BigInteger()),
    ("archive_failed_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("workspaces", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("workspaces", name)
