"""parts of words for search: runs of three characters of subjects, file names, references

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

`mailgate search '*schein'` finds Lieferschein, `ref:*2081` the order AB-742081: a part of a
word in a ticket's subject, an attachment's name or a reference. SQLite keeps the runs of
three characters of these short texts in the FTS5 table `search_parts` (trigram tokenizer),
by triggers; PostgreSQL indexes the three columns with pg_trgm (a trusted extension, which
the upgrade creates). The rows already there are indexed here. Mail text is not: an index of
its every run of three characters would be some three times the text's size.
"""

from __future__ import annotations

from alembic import op

from mailgate.search import build

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    build.install_parts(op.get_bind())


def downgrade() -> None:
    build.remove_parts(op.get_bind())
