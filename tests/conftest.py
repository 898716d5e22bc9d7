"""Shared fixtures: a Config built in code, a store per test on SQLite and PostgreSQL, a clock."""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mailgate.config import (
    Config,
)
from mailgate.outbound.context import Context
from mailgate.reading.quotes import strip_quotes
from mailgate.service.app import build_context
from mailgate.store.database import Store
from tests.helpers import Clock, make_config
from tests.reply_corpus import replies, score

REPO = Path(__file__).resolve().parents[1]
# The shared corpus sits beside the repository; MAILGATE_CORPUS points elsewhere if need be.
CORPUS = Path(os.environ.get("MAILGATE_CORPUS", REPO.parent / "shared" / "corpus" / "realworld"))
FIXTURES = Path(__file__).parent / "fixtures"
PG_SERVER = os.environ.get("MAILGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER}: {exc}")
    return PG_SERVER


def _create_database(server: str) -> str:
    name = f"mailgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(server: str, name: str) -> str:
    return f"postgresql+psycopg://{server.removeprefix('postgresql://')}/{name}"


def _migrated(url: str) -> str:
    """Migrate the database; returns the revision it is at now."""
    store = Store(url)
    store.ensure_schema()
    store.dispose()
    return store.head_revision()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = _create_database(postgres_server)
    yield _url(postgres_server, name)
    _drop_database(postgres_server, name)


class MigratedDatabases:
    """Migrated PostgreSQL databases that tests use one after the other: migrating a new
    database (or copying one) takes a few tenths of a second, and hundreds of tests want
    one. A database comes back emptied, its ids starting again at 1, as a new one would be;
    one whose schema a test changed is dropped. (test_migrations.py migrates for real.)"""

    def __init__(self, server: str) -> None:
        self.server = server
        self.free: list[str] = []
        self.made: list[str] = []
        self.head = ""

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        name = _create_database(self.server)
        self.made.append(name)
        self.head = _migrated(_url(self.server, name))
        return name

    def give_back(self, name: str) -> None:
        with psycopg.connect(f"{self.server}/{name}", autocommit=True) as conn:
            # Whatever the test left connected (a killed daemon's sessions, their locks).
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            try:
                revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            except psycopg.errors.UndefinedTable:
                revision = None
            if revision != (self.head,):
                return  # the test changed the schema: dropped at the end
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")  # no FK order
                for (table,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename != 'alembic_version'"
                ).fetchall():
                    conn.execute(f'DELETE FROM "{table}"')
                for (sequence,) in conn.execute(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
                ).fetchall():
                    conn.execute(f'ALTER SEQUENCE "{sequence}" RESTART')
        self.free.append(name)


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: str) -> Iterator[MigratedDatabases]:
    databases = MigratedDatabases(postgres_server)
    yield databases
    for name in databases.made:
        _drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that tests copy: a millisecond, where migrating takes 0.15 s."""
    path = tmp_path_factory.mktemp("template") / "mailgate.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database for one test: SQLite under tmp_path, or PostgreSQL."""
    if request.param == "postgres":
        databases = request.getfixturevalue("migrated_postgres")
        name = databases.take()
        yield _url(databases.server, name)
        databases.give_back(name)
        return
    path = tmp_path / "mailgate.db"
    shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
    yield f"sqlite:///{path}"


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url)


@pytest.fixture
def ctx(config: Config, clock: Clock) -> Iterator[Context]:
    """A migrated store on the parametrised database, with the test's clock."""
    context = dataclasses.replace(build_context(config), clock=clock)
    yield context
    context.store.dispose()


@pytest.fixture
def sqlite_ctx(tmp_path: Path, clock: Clock, migrated_sqlite: Path) -> Iterator[Context]:
    shutil.copyfile(migrated_sqlite, tmp_path / "mailgate.db")
    context = dataclasses.replace(build_context(make_config(tmp_path)), clock=clock)
    yield context
    context.store.dispose()


# The known desk of the report tests, for every test module that asks for it by name.
from tests.desk import desk, desk_cli  # noqa: E402, F401

# A desk driven through `mailgate ingest`, its sent mail and the command line.
from tests.mailroom import room  # noqa: E402, F401


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reply corpus's score in the run's summary (CI log included), when its test ran."""
    reports = (r for reports in terminalreporter.stats.values() for r in reports)
    if not any("test_reply_corpus.py" in getattr(r, "nodeid", "") for r in reports):
        return
    results = [(reply, strip_quotes(reply.text) == reply.kept) for reply in replies()]
    terminalreporter.write_line(score(results))
