"""intake: indexes that answer the loop breaker and the duplicate check by themselves

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24

On SQLite a stored message's raw bytes lie inside its row, before the status and the
breaker's columns: reading those from the table means reading through the whole message.
Indexes that hold every column the two look-ups read spare that (and on PostgreSQL they
allow index-only scans). Each replaces the single-column index it starts with.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_intake_sender_recent",
        "intake",
        ["from_addr", "received_at", "status", "automatic"],
        unique=False,
    )
    op.drop_index("ix_intake_from_addr", table_name="intake")
    op.create_index(
        "ix_intake_message_id_outcome",
        "intake",
        ["message_id", "status", "content_sha256"],
        unique=False,
    )
    op.drop_index("ix_intake_message_id", table_name="intake")


def downgrade() -> None:
    op.create_index("ix_intake_message_id", "intake", ["message_id"], unique=False)
    op.drop_index("ix_intake_message_id_outcome", table_name="intake")
    op.create_index("ix_intake_from_addr", "intake", ["from_addr"], unique=False)
    op.drop_index("ix_intake_sender_recent", table_name="intake")
