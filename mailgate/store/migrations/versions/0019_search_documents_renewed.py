"""PostgreSQL writes a ticket's search document for less: once for a new ticket, at commit

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

The functions and triggers of 0016 and 0017 made anew, for what storing a mail costs: an
article's words are split from its folded text without PostgreSQL's text parser (the
document keeps no positions), folding matches no spaces, a new ticket's document is written
once when its transaction commits (from all its rows, not again for each article,
attachment and reference), and a document stays uncompressed in its row up to 8 kB (its
words hardly compress: each try failed and moved it to the TOAST table). The documents hold
the same words as before, so none is written again. Nothing changes on SQLite.
"""

from __future__ import annotations

from alembic import op

from mailgate.search import build

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    build.renew_documents(op.get_bind())


def downgrade() -> None:
    # The renewed functions and triggers write the same documents as 0017's did: they stay,
    # and 0017's downgrade removes them with the documents.
    pass
