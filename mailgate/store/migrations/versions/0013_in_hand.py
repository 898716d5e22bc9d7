"""intake.in_hand_by, intake.deaths: a message that kills the daemon's own process

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

With `[processing] workers = 0` the daemon processes mail in its own process: a message that
kills it was lost from view with it, and every restart died of it again. A message is now
marked with the run that has it in hand before it is processed; a mark found at the next
start is a death, and a message at two deaths is quarantined.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("intake") as batch:
        batch.add_column(sa.Column("in_hand_by", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("deaths", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("intake") as batch:
        batch.drop_column("deaths")
        batch.drop_column("in_hand_by")
