"""report indexes: tickets by status, update time and resolution time

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_ticket_status"), "ticket", ["status"], unique=False)
    op.create_index(op.f("ix_ticket_updated_at"), "ticket", ["updated_at"], unique=False)
    op.create_index(op.f("ix_ticket_resolved_at"), "ticket", ["resolved_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ticket_resolved_at"), table_name="ticket")
    op.drop_index(op.f("ix_ticket_updated_at"), table_name="ticket")
    op.drop_index(op.f("ix_ticket_status"), table_name="ticket")
