"""a desk of years: stats by category and status, a month's time, and the SQLite search
index merged less often

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

On a desk of 1,000,000 tickets (benchmarks/scale.py) `stats` counted the tickets by category
and status by reading the whole ticket table, and `report time` found a month's time by
reading every time entry: an index each, the first covering the count. On SQLite, storing a
mail grew slower as the search index grew: FTS5 merged its segments as soon as four of a
size were there, and each merge is work in the writing transaction. Merging at eight
(`automerge`, FTS5's own setting, kept in the index) halves the levels a word's entry is
copied through; queries read at most a few more segments. PostgreSQL has no such setting.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# The FTS5 tables of the SQLite search index (0016, 0018), and FTS5's default merge level.
SEARCH_TABLES = ("search_fts", "search_parts")
AUTOMERGE, DEFAULT_AUTOMERGE = 8, 4


def upgrade() -> None:
    op.create_index("ix_ticket_category_status", "ticket", ["category", "status"])
    op.create_index("ix_timeentry_created_at", "timeentry", ["created_at"])
    _automerge(AUTOMERGE)


def downgrade() -> None:
    _automerge(DEFAULT_AUTOMERGE)
    op.drop_index("ix_timeentry_created_at", table_name="timeentry")
    op.drop_index("ix_ticket_category_status", table_name="ticket")


def _automerge(level: int) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in SEARCH_TABLES:
        found = bind.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": table},
        ).first()
        if found:
            # The table's own name as its first column is how FTS5 takes a setting.
            bind.execute(text(f"INSERT INTO {table}({table}, rank) VALUES ('automerge', {level})"))
