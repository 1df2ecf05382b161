"""SSH access and activity: each course's certificate authority, staff certificates, append-only agent activity.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "course_ssh_cas",
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("private_key_enc", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "staff_ssh_certs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("serial", sa.BigInteger, nullable=False, unique=True),
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("staff_person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_id", sa.String(255), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("public_key_fingerprint", sa.String(128), nullable=False),
        sa.Column("valid_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("valid_before > valid_after", name="ck_staff_ssh_certs_validity"),
    )
    op.create_index("ix_staff_ssh_certs_ws", "staff_ssh_certs", ["workspace_id"])
    op.create_table(
        "activity_events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace_id", "event_id", name="uq_activity_events_ws_event"),
    )
    op.create_index("ix_activity_events_ws_at", "activity_events", ["workspace_id", "at"])
    op.execute(
        """
        CREATE FUNCTION activity_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'activity_events is append-only';
        END $$;
        CREATE TRIGGER activity_events_no_update_delete BEFORE UPDATE OR DELETE ON activity_events
            FOR EACH ROW EXECUTE FUNCTION activity_events_append_only();
        CREATE TRIGGER activity_events_no_truncate BEFORE TRUNCATE ON activity_events
            FOR EACH STATEMENT EXECUTE FUNCTION activity_events_append_only();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS activity_events_no_truncate ON activity_events")
    op.execute("DROP TRIGGER IF EXISTS activity_events_no_update_delete ON activity_events")
    op.execute("DROP FUNCTION IF EXISTS activity_events_append_only()")
    op.drop_table("activity_events")
    op.drop_table("staff_ssh_certs")
    op.drop_table("course_ssh_cas")
