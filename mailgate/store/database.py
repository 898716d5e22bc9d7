"""Database engine, sessions, the transaction helper and schema migrations."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    CursorResult,
    Executable,
    Insert,
    Table,
    Update,
    bindparam,
    event,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, create_engine

from mailgate.config import ConfigError
from mailgate.store import later

MIGRATIONS = Path(__file__).parent / "migrations"

# SQLite's page cache, a connection's own: a share of the database file, between SQLite's
# default and a cap. A desk of years has big indexes keyed by what comes in at random
# (Message-ID, checksums, senders): each mail's inserts read pages across them, and with
# the default 2 MB a million tickets' desk read four times the pages a mail that an empty
# one did, through the operating system, and took 0.80x its ingest rate; with 128 MB,
# 0.92-0.99x (benchmarks/scale.py). A small desk keeps the default: memory that a cache
# slowly filling would seem to leak buys it nothing.
CACHE_SHARE = 64  # of the file's size
CACHE_MIN_KIB = 2000  # SQLite's default
CACHE_MAX_KIB = 128 * 1024


Row = TypeVar("Row", bound=SQLModel)


def direct(session: Session, statement: Executable, params: Any = None) -> CursorResult[Any]:
    """Run a plain statement in the session's transaction, on its connection: not through
    the ORM, which would first flush whatever is pending and cost as much again. For
    statements that refer only to rows already written. A read first writes the rows held
    back for its tables (later.py)."""
    later.before_reading(session, statement)
    return session.connection().execute(statement, params)


def insert_row(session: Session, row: Row, *, track: bool = False) -> Row:
    """Insert one new row at once by a plain statement and give it its id: the unit of work
    costs several times as much for a row written once. `track`: the session then holds the
    row as if it had been read, so that later changes to it are written on flush."""
    table = row.__table__  # type: ignore[attr-defined]
    values = {c.key: getattr(row, c.key) for c in table.columns if not c.primary_key}
    row_id = direct(session, _returning_id(table), values).scalar_one()
    row.id = row_id  # type: ignore[attr-defined]
    if track:
        make_transient_to_detached(row)
        session.add(row)
    return row


def update_row(session: Session, row: SQLModel, **values: Any) -> None:
    """Change a read row at once by a plain statement, and its object as if it had been
    read so: the unit of work would otherwise write the same change again, at a cost of
    several statements. Other changes to the object are written on flush as before."""
    table, row_id = row.__table__, row.id  # type: ignore[attr-defined]
    params = {f"new_{key}": value for key, value in values.items()}
    direct(session, _update_by_id(table, tuple(values)), {"row_id": row_id, **params})
    for key, value in values.items():
        set_committed_value(row, key, value)


@functools.cache
def _returning_id(table: Table) -> Insert:
    return insert(table).returning(table.c.id)


@functools.cache
def _update_by_id(table: Table, columns: tuple[str, ...]) -> Update:
    """Made once for each set of columns: building a statement, and the key SQLAlchemy finds
    its compiled form by, cost as much again as running it."""
    values = {column: bindparam(f"new_{column}") for column in columns}
    return update(table).where(table.c.id == bindparam("row_id")).values(values)


class StoreUnavailable(Exception):
    """Storage cannot take work now (the database locked, down or full; the data directory
    not writable); the caller should retry later."""


class SchemaOutdated(Exception):
    """The database schema is not the one this code needs: older (`mailgate db upgrade`
    fixes it), newer (a later mailgate migrated it), or not there at all."""


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def cache_kib(cursor: Any) -> int:
    """The page cache a new connection gets, by the size of the database file now."""
    pages = cursor.execute("PRAGMA page_count").fetchone()[0]
    page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
    share = pages * page_size // 1024 // CACHE_SHARE
    return min(CACHE_MAX_KIB, max(CACHE_MIN_KIB, share))


def _sqlite_pragmas(busy_timeout: float, synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib(cursor)}")
        if synchronous == "FULL":
            # The commit that passes the log's size limit copies the log into the database
            # (a checkpoint, with fsyncs): not in a commit of received mail, whose sender
            # waits for it. Processing, which follows every intake, commits the rest and
            # checkpoints for both.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()
        # SQLite's own lower() changes only ASCII letters: "BÜRO" would not find "Büro".
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    return on_connect


def _sqlite_engine(url: str, busy_timeout: float, synchronous: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas(busy_timeout, synchronous))
    return engine


class Store:
    """One database: SQLite (embedded default) or PostgreSQL, the same code for both."""

    def __init__(self, url: str, busy_timeout: float = 5.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            self._open(url, busy_timeout)
        except (ImportError, NoSuchModuleError, ArgumentError) as exc:
            raise ConfigError(_driver_problem(url, exc)) from None

    def _open(self, url: str, busy_timeout: float) -> None:
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            # WAL with synchronous=NORMAL survives a crash of the process but may lose the
            # last commits to a power cut; FULL fsyncs each commit. Received mail is stored
            # with FULL before its 250 (a power cut then loses nothing that was accepted);
            # the rest can be done again from what was received, so it skips the fsync.
            # The next FULL commit syncs the log, and with it every earlier commit.
            self.engine: Engine = _sqlite_engine(url, busy_timeout, "NORMAL")
            self.durable_engine: Engine = _sqlite_engine(url, busy_timeout, "FULL")
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            self.durable_engine = self.engine  # PostgreSQL syncs every commit

    @contextmanager
    def session(self, durable: bool = False) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises.
        Database trouble that may pass (a lock, a lost connection) becomes StoreUnavailable.
        `durable`: on disk when committed, even across a power cut (for received mail)."""
        engine = self.durable_engine if durable else self.engine
        session = Session(engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except (OperationalError, DBAPIError) as exc:
            session.rollback()
            if _is_temporary(exc):
                raise StoreUnavailable(_short(exc)) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        self.durable_engine.dispose()

    # Migrations -------------------------------------------------------------------------

    # Alembic is imported only to migrate: every CLI call checks the schema, and importing
    # it costs more than the check itself.

    def upgrade(self) -> str:
        """Bring the schema to the newest revision; returns that revision."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        try:
            command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreUnavailable(_short(exc)) from exc
        return self.head_revision()

    def head_revision(self) -> str:
        return head_revision()

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def ensure_schema(self) -> None:
        """SQLite migrates itself (the embedded default must just work); PostgreSQL, shared
        by several instances, is upgraded by the operator on purpose."""
        current = self._revision()
        if current == self.head_revision():
            return
        if current is not None and current > self.head_revision():
            raise SchemaOutdated(self._mismatch(current))
        if self.is_sqlite or current is None:
            self.upgrade()
            return
        raise SchemaOutdated(self._mismatch(current))

    def check_schema(self) -> None:
        """For commands that only read: the schema must be this code's already; nothing is
        created or migrated."""
        current = self._revision()
        if current != self.head_revision():
            raise SchemaOutdated(self._mismatch(current))

    def _revision(self) -> str | None:
        try:
            return self.current_revision()
        except OperationalError as exc:
            raise StoreUnavailable(_short(exc)) from exc

    def _mismatch(self, current: str | None) -> str:
        head = self.head_revision()
        if current is None:
            return "the database holds no mailgate schema yet: run `mailgate db upgrade`"
        if current > head:
            return (
                f"database schema is at {current}, newer than this mailgate ({head}): "
                "run the mailgate version that migrated it"
            )
        return (
            f"database schema is at {current}, this mailgate needs {head}: "
            "run `mailgate db upgrade`"
        )


def head_revision() -> str:
    """The newest revision: migrations are numbered `NNNN_name.py` with revision NNNN."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" and "///" in url else None


def _driver_problem(url: str, exc: Exception) -> str:
    """database.url names a driver that is not installed, or is no database URL at all."""
    scheme = url.split(":", 1)[0]
    if isinstance(exc, ArgumentError):
        return f"database.url: not a database URL ({exc})"
    hint = " (the postgres extra installs psycopg)" if scheme.startswith("postgres") else ""
    return f"database.url: no driver for {scheme} is installed{hint}: {exc}"


def _ensure_sqlite_dir(url: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _is_temporary(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return bool(getattr(exc, "connection_invalidated", False))


def _short(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]
