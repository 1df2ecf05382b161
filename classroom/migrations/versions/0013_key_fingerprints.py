"""SSH key fingerprints bound for ever to the first person who registered them (revocation never frees one).

Existing rows: each fingerprint goes to the person of its earliest key. A key still active for anyone else
(a takeover of a revoked key, possible before this revision) is revoked here, so the owner's private half
can no longer open another person's workspace.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssh_key_fingerprints",
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_ssh_key_fingerprints_person_id_people"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_ssh_key_fingerprints")),
    )
    op.create_index(op.f("ix_ssh_key_fingerprints_person_id"), "ssh_key_fingerprints", ["person_id"], unique=False)
    # Raw SQL: a one-off data move inside the migration (no models at migration time).
    op.execute(
        """
        INSERT INTO ssh_key_fingerprints (fingerprint, person_id, bound_at)
        SELECT DISTINCT ON (fingerprint) fingerprint, person_id, created_at
        FROM ssh_keys ORDER BY fingerprint, created_at, id
        """
    )
    op.execute(
        """
        UPDATE ssh_keys AS k SET revoked_at = now()
        FROM ssh_key_fingerprints AS f
        WHERE k.fingerprint = f.fingerprint AND k.person_id <> f.person_id AND k.revoked_at IS NULL
        """
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ssh_key_fingerprints_person_id"), table_name="ssh_key_fingerprints")
    op.drop_table("ssh_key_fingerprints")
