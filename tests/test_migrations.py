"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from mailgate.context import Context
from mailgate.loops import automatic_sent
from mailgate.store import MIGRATIONS, Store


def test_migrated_schema_matches_models(ctx: Context) -> None:
    with ctx.store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []
    assert ctx.store.current_revision() == ctx.store.head_revision()


def test_upgrade_twice_is_harmless(ctx: Context) -> None:
    assert ctx.store.upgrade() == ctx.store.head_revision()


def test_numbering_convention_names_alembic_head(ctx: Context) -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from mailgate.store import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == ctx.store.head_revision()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0008_counts_mail_queued_before_it_toward_the_limit(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path}/old.db"
        if db == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = Store(url)
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    alembic.attributes["engine"] = store.engine
    command.upgrade(alembic, "0007")
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with store.engine.begin() as conn:
        for template in ("acknowledgement", "staff_answer"):
            conn.execute(
                text(
                    "INSERT INTO outbox (template, envelope_from, to_addrs, subject, message_id,"
                    " raw, status, attempts, next_attempt_at, last_error, created_at)"
                    " VALUES (:t, 's@example.com', 'Anna@Kunde.example, bob@kunde.example',"
                    " 'x', :mid, :raw, 'sent', 1, :now, '', :now)"
                ),
                {"t": template, "mid": f"{template}@example.com", "raw": b"x", "now": now},
            )
    store.upgrade()
    with store.session() as session:
        # The person's answer does not count; the acknowledgement counts for both recipients.
        assert automatic_sent(session, "anna@kunde.example", now - timedelta(hours=1)) == 1
        assert automatic_sent(session, "bob@kunde.example", now - timedelta(hours=1)) == 1
    store.dispose()
