"""web_link, web_session: signing in to the web desk by a mailed link

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

The web desk has no passwords: a person asks for a link, it is mailed to their address, and
a click on the page it opens signs them in. Both the link's and the session's tokens are
kept as hashes: a copy of the database signs nobody in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _owners() -> list[sa.Column[int]]:
    # A link or session is an agent's or a customer contact's: one of the two is set.
    return [
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agent.id"), nullable=True),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contact.id"), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "web_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", AutoString(), nullable=False),
        *_owners(),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", AutoString(), nullable=False),
        *_owners(),
        sa.Column("form_token", AutoString(), nullable=False),
        sa.Column("user_agent", AutoString(), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    for table in ("web_link", "web_session"):
        op.create_index(f"ix_{table}_token_hash", table, ["token_hash"], unique=True)
        op.create_index(f"ix_{table}_agent_id", table, ["agent_id"])
        op.create_index(f"ix_{table}_contact_id", table, ["contact_id"])


def downgrade() -> None:
    op.drop_table("web_session")
    op.drop_table("web_link")
