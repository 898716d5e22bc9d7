"""Before and after migrations 0023 and 0024 on the same desks, in the same run: the
commands they serve as the desk was before and as it is, and on SQLite the ingest rate with
the search index merging at FTS5's default and at 0023's level."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from search_dbs import Db
from search_ingest import drop_sql, execute, index_objects
from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.store import tally
from mailgate.store.models import Ticket

TIME_INDEX = "ix_timeentry_created_at"  # 0023: a month's time entries found by their day
COUNT_INDEX = "ix_ticket_category_status"  # 0023's count of the tickets, until 0024's tally
COMMANDS = ("stats", "report time --month MONTH")
SEARCH_TABLES = ("search_fts", "search_parts")  # SQLite's FTS5 tables (mailgate.search)
FTS5_AUTOMERGE = 4  # FTS5's default, and mailgate's before 0023


def counted_from_tickets(session: Session) -> dict[tally.Pair, int]:
    """`stats`' count as it was before 0024: every ticket, through 0023's index."""
    query = select(Ticket.category, Ticket.status, func.count()).group_by(
        col(Ticket.category), col(Ticket.status)
    )
    return {(category, status): n for category, status, n in session.exec(query)}


@contextmanager
def as_before(dbs: Sequence[Db]) -> Iterator[None]:
    """`report time` without 0023's index; `stats` counting the tickets through the index
    0023 made for it and 0024 dropped (made again for the while). As it was on leaving."""
    saved = []
    for db in dbs:
        found = [o for o in index_objects(db) if o[0] == "index" and o[1] == TIME_INDEX]
        drops = [drop_sql(db, kind, name, table) for kind, name, table, _ in found]
        execute(db, [*drops, f"CREATE INDEX {COUNT_INDEX} ON ticket (category, status)"])
        saved.append((db, [f"DROP INDEX {COUNT_INDEX}", *(sql for *_, sql in found)]))
    counts, tally.counts = tally.counts, counted_from_tickets
    try:
        yield
    finally:
        tally.counts = counts
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
