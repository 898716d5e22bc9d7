"""The search benchmark's databases: a SQLite file and a PostgreSQL database made for the run,
filled by bulk inserts at the schema before the search index, then migrated to the newest
revision (which builds the index for the rows already there); their sizes, object by object."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from search_desk import Desk, Writer, write_people, write_tickets
from sqlalchemy import event

from mailgate.desk.tickets import TICKET_COUNTER
from mailgate.store.database import MIGRATIONS, Store

PRE_INDEX = "0015"  # the newest revision without a search index
CHUNK = 10_000
# Tables whose ids a fill writes: PostgreSQL's sequences go on after the highest.
SEQUENCES = (
    "agent",
    "organisation",
    "contact",
    "ticket",
    "article",
    "attachment",
    "timeentry",
    "outbox",
    "intake",
    "event",
    "contingent",
)
T = TypeVar("T")


@dataclass
class Db:
    kind: str  # sqlite | postgres
    url: str  # for mailgate (SQLAlchemy)
    server: str = ""  # PostgreSQL: the server, for creating and dropping the database
    name: str = ""  # PostgreSQL: the database's name
    settings: tuple[str, ...] = ()  # PostgreSQL: `name = value` set on each connection

    def store(self) -> Store:
        store = Store(self.url)
        if self.settings:

            def apply(dbapi_connection: Any, _record: Any) -> None:
                with dbapi_connection.cursor() as cursor:
                    for setting in self.settings:
                        name, _, value = setting.partition("=")
                        cursor.execute("SELECT set_config(%s, %s, false)", (name, value))
                dbapi_connection.commit()

            event.listen(store.engine, "connect", apply)
        return store

    @property
    def path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))

    @property
    def dsn(self) -> str:
        return f"{self.server}/{self.name}"


def sqlite_db(path: Path) -> Db:
    return Db("sqlite", f"sqlite:///{path}")


def postgres_db(server: str, name: str | None = None) -> Db:
    name = name or f"mailgate_search_{uuid.uuid4().hex[:10]}"
    host = server.removeprefix("postgresql://")
    return Db("postgres", f"postgresql+psycopg://{host}/{name}", server, name)


def create(db: Db) -> None:
    """An empty database: the SQLite file removed, the PostgreSQL database made anew."""
    if db.kind == "sqlite":
        for end in ("", "-wal", "-shm", "-journal"):
            Path(f"{db.path}{end}").unlink(missing_ok=True)
        return
    drop(db)
    with psycopg.connect(f"{db.server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db.name}"')


def drop(db: Db) -> None:
    if db.kind == "sqlite":
        for end in ("", "-wal", "-shm", "-journal"):
            Path(f"{db.path}{end}").unlink(missing_ok=True)
        return
    with psycopg.connect(f"{db.server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


def migrate(db: Db, revision: str) -> float:
    """Seconds to bring the schema to `revision` ("head": the newest)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    store = db.store()
    try:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = store.engine
        start = time.perf_counter()
        command.upgrade(cfg, revision)
        return time.perf_counter() - start
    finally:
        store.dispose()


def revision(db: Db) -> str | None:
    store = db.store()
    try:
        return store.current_revision()
    finally:
        store.dispose()


def exists(db: Db) -> bool:
    """Whether the database is there with a schema (a kept desk)."""
    if db.kind == "sqlite" and not db.path.exists():
        return False
    try:
        return revision(db) is not None
    except Exception:  # a PostgreSQL database that is not there
        return False


# What --keep DIR remembers of the desks in it: desk.json, one entry a database.


def load_state(work: Path) -> dict[str, Any]:
    path = work / "desk.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_state(work: Path, state: dict[str, Any]) -> None:
    (work / "desk.json").write_text(json.dumps(state, indent=1))


# Bulk writing -------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    # As SQLAlchemy stores a UTC datetime in SQLite.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _sqlite_writer(conn: sqlite3.Connection) -> Writer:
    def write(table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> int:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        values = [tuple(map(_sqlite_value, row)) for row in rows]
        conn.executemany(sql, values)
        return len(values)

    return write


def _postgres_writer(conn: psycopg.Connection[Any]) -> Writer:
    def write(table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> int:
        count = 0
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    return write


def fill(db: Db, desk: Desk, seed: int) -> tuple[int, int]:
    """The search desk written into a new database at PRE_INDEX; (articles, attachments)."""

    def write_desk(write: Writer) -> tuple[int, int]:
        write_people(desk, write)
        return write_tickets(desk, seed, write)

    return fill_with(db, desk.tickets, write_desk)


def fill_with(db: Db, tickets: int, write_desk: Callable[[Writer], T]) -> T:
    """A new database at PRE_INDEX, filled by `write_desk` through a bulk writer (ticket
    numbers 1001 to 1000 + `tickets` taken); returns what `write_desk` returns."""
    create(db)
    migrate(db, PRE_INDEX)
    # The counter holds the last number given: the next new ticket follows the desk's.
    counter = (
        "INSERT INTO counter (name, value) VALUES (%s, %s)",
        (TICKET_COUNTER, 1000 + tickets),
    )
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            written = write_desk(_sqlite_writer(conn))
            conn.execute(counter[0].replace("%s", "?"), counter[1])
            conn.commit()
        finally:
            conn.close()
        return written
    with psycopg.connect(db.dsn) as pg:
        # The rows are consistent by construction: no foreign key checks row by row (a
        # superuser's switch; the benchmark server trusts the postgres user).
        pg.execute("SET session_replication_role = replica")
        written = write_desk(_postgres_writer(pg))
        pg.execute(counter[0], counter[1])
        for table in SEQUENCES:
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
    with psycopg.connect(db.dsn, autocommit=True) as pg:
        pg.execute("ANALYZE")  # as autovacuum would soon after such a load
    return written


# Sizes --------------------------------------------------------------------------------------


def sizes(db: Db) -> dict[str, tuple[str, int]]:
    """Every table and index: name -> (the table it belongs to, bytes on disk)."""
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path)
        try:
            owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master"))
            rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        finally:
            conn.close()
        return {name: (owner.get(name, name), int(size)) for name, size in rows}
    with psycopg.connect(db.dsn) as pg:
        rows = pg.execute(
            "SELECT c.relname, coalesce(t.relname, c.relname), "
            "CASE WHEN c.relkind = 'i' THEN pg_relation_size(c.oid) "
            "ELSE pg_table_size(c.oid) END "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_index x ON x.indexrelid = c.oid "
            "LEFT JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'm')"
        ).fetchall()
    return {name: (table, int(size)) for name, table, size in rows}


TEXT_COLUMNS = {
    "ticket": ("subject",),
    "article": ("subject", "text", "from_addr", "from_name", "to_addrs", "cc_addrs"),
    "organisation": ("name",),
    "contact": ("email", "name"),
    "attachment": ("filename",),
    "ticketreference": ("reference",),
}


def text_bytes(db: Db) -> int:
    """The size of the text a search index covers (UTF-8 bytes): subjects, mail text,
    addresses and names, organisation names, file names, reference numbers."""
    size = "length(CAST({} AS BLOB))" if db.kind == "sqlite" else "octet_length({})"
    total = 0
    queries = [
        f"SELECT {' + '.join(f'coalesce(sum({size.format(c)}), 0)' for c in cols)} FROM {table}"
        for table, cols in TEXT_COLUMNS.items()
    ]
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path)
        try:
            for sql in queries:
                total += int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
        return total
    with psycopg.connect(db.dsn) as pg:
        for sql in queries:
            row = pg.execute(sql).fetchone()
            total += int(row[0]) if row else 0
    return total


def analyze_unanalyzed(db: Db) -> list[str]:
    """PostgreSQL: ANALYZE the tables that have no statistics yet (autovacuum would, in its
    time; a planner without them guesses row counts); returns their names."""
    if db.kind == "sqlite":
        return []
    with psycopg.connect(db.dsn, autocommit=True) as pg:
        names = [
            name
            for (name,) in pg.execute(
                "SELECT relname FROM pg_stat_user_tables "
                "WHERE last_analyze IS NULL AND last_autoanalyze IS NULL AND n_live_tup > 0"
            ).fetchall()
        ]
        for name in names:
            pg.execute(f'ANALYZE "{name}"')  # type: ignore[arg-type]
    return names
