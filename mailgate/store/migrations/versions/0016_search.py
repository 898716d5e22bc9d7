"""the search index: FTS5 kept by triggers on SQLite, GIN expression indexes on PostgreSQL

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

`mailgate search` and `tickets list --text` look words up in an index of ticket subjects,
article texts, senders and recipients, attachment names, references and organisation names.
The database writes it in the transaction that writes those rows, whatever code writes
them; the rows already there are indexed here (mailgate.search.build), with a progress bar
on a terminal. Tickets get an index by their last activity, the order of a search without words.
"""

from __future__ import annotations

from alembic import op

from mailgate.search import build

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Searches without words (is:open, after:) list the tickets by their last activity.
    op.create_index("ix_ticket_last_action_at", "ticket", ["last_action_at"])
    build.install(op.get_bind())


def downgrade() -> None:
    build.remove(op.get_bind())
    op.drop_index("ix_ticket_last_action_at", table_name="ticket")
