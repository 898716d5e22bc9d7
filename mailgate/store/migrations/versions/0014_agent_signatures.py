"""agent.signature, agent.endings: an agent's own signature, registered or learned

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

An agent's answer reached the customer with the agent's whole signature under it, and the
desk's closing besides. The signature an agent registers is kept with them; for one who has
none, the last lines of their latest answers are kept, and what recurs at their end is
learned as theirs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(sa.Column("signature", sa.String(), nullable=True))
        batch.add_column(sa.Column("endings", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("endings")
        batch.drop_column("signature")
