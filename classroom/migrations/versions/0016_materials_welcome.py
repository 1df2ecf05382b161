"""Welcome emails: a course switch (on by default) and, per enrollment, when its welcome was sent.

Existing enrollments count as welcomed (at their creation): turning the feature on must not mail a whole
running course again.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "course_policies",
        sa.Column("welcome_emails", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("enrollments", sa.Column("welcomed_at", sa.DateTime(timezone=True), nullable=True))
    # Raw SQL: a one-off backfill inside the migration (no models at migration time).
    op.execute("UPDATE enrollments SET welcomed_at = created_at")


def downgrade() -> None:
    op.drop_column("enrollments", "welcomed_at")
    op.drop_column("course_policies", "welcome_emails")
