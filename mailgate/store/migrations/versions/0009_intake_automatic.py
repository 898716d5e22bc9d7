"""intake automatic

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailgate.outbound.loops import HEADER_BYTES, header_block, is_automatic

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Rows read and written at a time: a large intake table is filled without holding it all.
CHUNK = 500


def upgrade() -> None:
    with op.batch_alter_table("intake", schema=None) as batch_op:
        batch_op.add_column(sa.Column("automatic", sa.Boolean(), nullable=True))
    _fill_verdicts()


def _fill_verdicts() -> None:
    """The loop breaker's verdict on the mail processed so far, read from each stored head
    as the breaker itself read it before each automatic mail. Mail still waiting (and any
    without a sender) gets its verdict when it is processed."""
    intake = sa.table(
        "intake",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("from_addr", sa.String),
        sa.column("raw", sa.LargeBinary),
        sa.column("automatic", sa.Boolean),
    )
    head = sa.func.substr(intake.c.raw, 1, HEADER_BYTES, type_=sa.LargeBinary)
    update = (
        intake.update()
        .where(intake.c.id == sa.bindparam("row_id"))
        .values(automatic=sa.bindparam("verdict"))
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(intake.c.id, intake.c.from_addr, head)
            .where(intake.c.id > last, intake.c.status != "received", intake.c.from_addr != "")
            .order_by(intake.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        verdicts = [
            {"row_id": row_id, "verdict": is_automatic(header_block(raw), from_addr)}
            for row_id, from_addr, raw in rows
        ]
        connection.execute(update, verdicts)
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("intake", schema=None) as batch_op:
        batch_op.drop_column("automatic")
