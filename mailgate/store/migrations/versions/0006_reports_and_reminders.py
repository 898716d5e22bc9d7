"""reports and reminders

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contingent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contingent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contingent_organisation_id"), ["organisation_id"], unique=False
        )

    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_response_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("resolved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("reminded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("sla_notified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )

    # Fill the new columns from the history already stored: the first staff answer, the
    # latest move to delivered or closed, and each organisation's contingent as one package.
    op.execute(
        "UPDATE ticket SET first_response_at = (SELECT min(article.created_at) FROM article"
        " WHERE article.ticket_id = ticket.id AND article.direction = 'staff')"
    )
    op.execute(
        "UPDATE ticket SET resolved_at = coalesce((SELECT max(event.created_at) FROM event"
        " WHERE event.ticket_id = ticket.id AND event.action = 'status'"
        " AND (event.detail LIKE '%-> delivered%' OR event.detail LIKE '%-> closed%')),"
        " ticket.updated_at) WHERE ticket.status IN ('delivered', 'closed')"
    )
    op.execute(
        "INSERT INTO contingent (organisation_id, minutes, note, actor, created_at)"
        " SELECT id, support_minutes, 'contingent before its history was kept', 'migration',"
        " created_at FROM organisation WHERE support_minutes <> 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("sla_notified_at")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("first_response_at")

    with op.batch_alter_table("contingent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contingent_organisation_id"))

    op.drop_table("contingent")
