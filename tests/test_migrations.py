"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from mailgate.context import Context


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
