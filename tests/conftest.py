"""Shared fixtures: a Config built in code, a store per test on SQLite and PostgreSQL, a clock."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mailgate.app import build_context
from mailgate.config import (
    Config,
)
from mailgate.context import Context
from tests.helpers import Clock, make_config

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


# The known desk of the report tests, for every test module that asks for it by name.
from tests.desk import desk, desk_cli  # noqa: E402, F401
