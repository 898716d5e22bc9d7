"""intake/outbox.removed_at and removed_by; event.ticket_id may be empty

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Mail was kept as received and as sent for ever. Retention now drops the bytes of mail whose
outcome is committed, and `customers forget` those of a person's mail: the rows stay (they
are the books) and say when their bytes went and why. A retention run and a forgotten
customer are events of the whole desk, on no ticket.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("intake", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("removed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
            )
            batch.add_column(
                sa.Column("removed_by", sa.String(), nullable=False, server_default="")
            )
    with op.batch_alter_table("event") as batch:
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM event WHERE ticket_id IS NULL")
    with op.batch_alter_table("event") as batch:
        batch.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
    for table in ("outbox", "intake"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("removed_by")
            batch.drop_column("removed_at")
