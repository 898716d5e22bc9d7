"""time entries and references

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ticketreference",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
        ),
        sa.PrimaryKeyConstraint("ticket_id", "reference"),
    )
    with op.batch_alter_table("ticketreference", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticketreference_reference"), ["reference"], unique=False
        )

    op.create_table(
        "timeentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("timeentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timeentry_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("timeentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeentry_ticket_id"))

    op.drop_table("timeentry")
    with op.batch_alter_table("ticketreference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticketreference_reference"))

    op.drop_table("ticketreference")
