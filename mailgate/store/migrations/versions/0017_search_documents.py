"""PostgreSQL's search reads one document of words per ticket

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

On PostgreSQL, the words of each ticket's subject, articles, attachments' names and
references go into one row of `search_doc` (kept by triggers in the writer's transaction),
with a GIN index over it: a search is one look-up in one index, and a common word reads the
newest tickets in order instead of every row that holds it. The expression indexes on each
table (the first form of 0016) are dropped. Nothing changes on SQLite.
"""

from __future__ import annotations

from alembic import op

from mailgate.search import build

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    build.install_documents(op.get_bind())


def downgrade() -> None:
    build.remove_documents(op.get_bind())
