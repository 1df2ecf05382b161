"""Archives before term end: when the agent reported, when the home last changed, a start for archiving only.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

COLUMNS = (
    ("archive_reported_at", sa.DateTime(timezone=True)),  # when the agent's report arrived
    ("home_changed_at", sa.DateTime(timezone=True)),  # the last heartbeat that counted changed files
    ("archiving_until", sa.DateTime(timezone=True)),  # started for its archive only: the sweep spares it until then
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("workspaces", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("workspaces", name)
