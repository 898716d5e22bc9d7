"""outbox recipients

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_recipient",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
        ),
        sa.PrimaryKeyConstraint("outbox_id", "address"),
    )
    with op.batch_alter_table("outbox_recipient", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_recipient_address_created_at", ["address", "created_at"], unique=False
        )

    # The mail already queued or sent, so that the limit on automatic mail counts it too.
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, to_addrs, template, created_at FROM outbox"))
    recipients = [
        {"outbox_id": row_id, "address": address, "automatic": template != "staff_answer",
         "created_at": created_at}
        for row_id, to_addrs, template, created_at in rows
        for address in dict.fromkeys(a.strip().lower() for a in to_addrs.split(",")) if address
    ]  # fmt: skip
    if recipients:
        connection.execute(
            sa.text(
                "INSERT INTO outbox_recipient (outbox_id, address, automatic, created_at)"
                " VALUES (:outbox_id, :address, :automatic, :created_at)"
            ),
            recipients,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_recipient", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_recipient_address_created_at")

    op.drop_table("outbox_recipient")
