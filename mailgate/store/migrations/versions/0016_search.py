"""the search index: FTS5 on SQLite, tsvector with GIN on PostgreSQL, kept by triggers

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

`mailgate search` and `tickets list --text` look words up in an index of ticket subjects,
article texts, senders and recipients, attachment names, references and organisation names.
Triggers write it in the transaction that writes those rows, whatever code writes them; the
rows already there are indexed here (mailgate.search.build), with a progress bar on a
terminal.
"""

from __future__ import annotations

from alembic import op

from mailgate.search import build

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    build.install(op.get_bind())


def downgrade() -> None:
    build.remove(op.get_bind())
