"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel, col, select

from mailgate.outbound.context import Context
from mailgate.outbound.loops import automatic_sent
from mailgate.store.database import MIGRATIONS, Store
from mailgate.store.models import Intake
from mailgate.store.spool import stored_raws


def _modelled(name: str | None, kind: str, _parent: object) -> bool:
    """The search index (search_*: an FTS5 table, a tsvector table) is no model's: it is
    SQL of its own, written by triggers (mailgate.search)."""
    return not (kind in ("table", "index") and (name or "").startswith("search_"))


def test_migrated_schema_matches_models(ctx: Context) -> None:
    with ctx.store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _modelled})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    assert ctx.store.current_revision() == ctx.store.head_revision()


def test_upgrade_twice_is_harmless(ctx: Context) -> None:
    assert ctx.store.upgrade() == ctx.store.head_revision()


def test_numbering_convention_names_alembic_head(ctx: Context) -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from mailgate.store.database import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == ctx.store.head_revision()


def store_at(db: str, tmp_path: Path, request: pytest.FixtureRequest, revision: str) -> Store:
    """A fresh database of the kind, migrated up to `revision` only."""
    if db == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/old.db")
    else:
        store = Store(request.getfixturevalue("postgres_url"))
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    alembic.attributes["engine"] = store.engine
    command.upgrade(alembic, revision)
    return store


def insert_old_intake(
    conn: Connection, now: datetime, raw: bytes, status: str, sender: str
) -> None:
    """A stored message as revisions before 0011 kept it: its bytes inside the intake row."""
    conn.execute(
        text(
            "INSERT INTO intake (received_at, source, envelope_from, envelope_to,"
            " sha256, content_sha256, size, raw, status, reason, attempts,"
            " message_id, from_addr, subject)"
            " VALUES (:now, 'smtp', '', '', 'x', '', :size, :raw, :status, '', 1, '',"
            " :sender, '')"
        ),
        {"now": now, "raw": raw, "size": len(raw), "status": status, "sender": sender},
    )


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0008_counts_mail_queued_before_it_toward_the_limit(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = store_at(db, tmp_path, request, "0007")
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


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0009_notes_the_breakers_verdict_on_mail_processed_before_it(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = store_at(db, tmp_path, request, "0008")
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rows = [  # status, sender, the message's head
        ("done", "alice@acme.example", b"From: alice@acme.example\r\n\r\nHello"),
        ("ignored", "alice@acme.example", b"Auto-Submitted: auto-replied\r\n\r\nAway"),
        ("done", "noreply@acme.example", b"From: noreply@acme.example\r\n\r\nReceipt"),
        ("received", "", b"Auto-Submitted: auto-replied\r\n\r\nWaiting"),
        ("quarantined", "", b"Precedence: bulk\r\n\r\nNo sender"),
    ]
    with store.engine.begin() as conn:
        for status, sender, raw in rows:
            insert_old_intake(conn, now, raw, status, sender)
    store.upgrade()
    with store.engine.connect() as conn:
        noted = list(conn.execute(text("SELECT automatic FROM intake ORDER BY id")).scalars())
    # Mail still waiting, and mail without a sender, get theirs when they are processed.
    assert [None if v is None else bool(v) for v in noted] == [False, True, True, None, None]
    store.dispose()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0011_moves_each_stored_message_to_its_own_table_byte_for_byte(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = store_at(db, tmp_path, request, "0010")
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    raws = [b"From: a@acme.example\r\n\r\nfirst", bytes(range(256)) * 300]
    with store.engine.begin() as conn:
        for raw in raws:
            insert_old_intake(conn, now, raw, "received", "")
    store.upgrade()
    with store.session() as session:
        ids = list(session.exec(select(Intake.id).order_by(col(Intake.id))))
        assert stored_raws(session, ids) == dict(zip(ids, raws, strict=True))
    with store.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("intake")}
    assert "raw" not in columns and "status" in columns
    store.dispose()
