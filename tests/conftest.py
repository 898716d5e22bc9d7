"""Shared fixtures: a Config built in code, a store per test on SQLite and PostgreSQL, a clock."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from mailgate.app import build_context
from mailgate.config import (
    Config,
    DatabaseConfig,
    OutboundConfig,
    PathsConfig,
    SmtpConfig,
)
from mailgate.context import Context

REPO = Path(__file__).resolve().parents[1]
# The shared corpus sits beside the repository; MAILGATE_CORPUS points elsewhere if need be.
CORPUS = Path(os.environ.get("MAILGATE_CORPUS", REPO.parent / "shared" / "corpus" / "realworld"))
FIXTURES = Path(__file__).parent / "fixtures"
PG_SERVER = os.environ.get("MAILGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


class Clock:
    """A clock the test sets; every stage reads time through it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_config(tmp_path: Path, db_url: str | None = None, **sections: object) -> Config:
    """A complete configuration under tmp_path; keyword sections replace whole sections."""
    cfg = Config(
        source="(test)",
        database=DatabaseConfig(url=db_url or f"sqlite:///{tmp_path}/mailgate.db"),
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        smtp=SmtpConfig(
            listen="127.0.0.1:0",
            addresses=["support@example.com"],
            comment_address="support-comment@example.com",
        ),
        outbound=OutboundConfig(
            transport="file",
            directory=str(tmp_path / "sent"),
            from_="Support <support@example.com>",
        ),
    )
    return dataclasses.replace(cfg, **sections)  # type: ignore[arg-type]


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


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"mailgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = postgres_server.removeprefix("postgresql://")
    yield f"postgresql+psycopg://{host}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/mailgate.db"


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
def sqlite_ctx(tmp_path: Path, clock: Clock) -> Iterator[Context]:
    context = dataclasses.replace(build_context(make_config(tmp_path)), clock=clock)
    yield context
    context.store.dispose()
