"""Before and after migration 0023 on the same desks, in the same run: the commands its two
indexes serve with the indexes dropped and in place again, and on SQLite the ingest rate
with the search index merging at FTS5's default and at 0023's level."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from search_dbs import Db
from search_ingest import drop_sql, execute, index_objects

# What 0023 added, and the commands that read through it.
INDEXES = ("ix_ticket_category_status", "ix_timeentry_created_at")
COMMANDS = ("stats", "report time --month MONTH")
SEARCH_TABLES = ("search_fts", "search_parts")  # SQLite's FTS5 tables (mailgate.search)
FTS5_AUTOMERGE = 4  # FTS5's default, and mailgate's before 0023


@contextmanager
def without_indexes(dbs: Sequence[Db]) -> Iterator[None]:
    """0023's indexes dropped in each database, made again as they were on leaving."""
    saved = []
    for db in dbs:
        found = [o for o in index_objects(db) if o[0] == "index" and o[1] in INDEXES]
        execute(db, [drop_sql(db, kind, name, table) for kind, name, table, _ in found])
        saved.append((db, [sql for *_, sql in found]))
    try:
        yield
    finally:
        for db, statements in saved:
            execute(db, statements)


def automerge(db: Db) -> int | None:
    """The search index's merge level (FTS5's `automerge`), None without one (PostgreSQL)."""
    if db.kind != "sqlite":
        return None
    conn = sqlite3.connect(db.path)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if SEARCH_TABLES[0] not in tables:
            return None
        row = conn.execute(f"SELECT v FROM {SEARCH_TABLES[0]}_config WHERE k = 'automerge'")
        found = row.fetchone()
    finally:
        conn.close()
    return int(found[0]) if found else FTS5_AUTOMERGE


def _set_automerge(db: Db, level: int) -> None:
    execute(
        db,
        [f"INSERT INTO {t}({t}, rank) VALUES ('automerge', {level})" for t in SEARCH_TABLES],
    )


@contextmanager
def merging_at(dbs: Sequence[Db], level: int) -> Iterator[None]:
    """The SQLite search index of each database merging at `level`, set back on leaving."""
    saved = [(db, automerge(db)) for db in dbs]
    for db, _ in saved:
        _set_automerge(db, level)
    try:
        yield
    finally:
        for db, was in saved:
            if was is not None:
                _set_automerge(db, was)
