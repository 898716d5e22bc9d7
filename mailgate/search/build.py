"""Create the search index on a database and index the rows already there (migration 0016).

On a terminal a progress bar shows each table's rows as they are indexed. A later migration
that copies one of the indexed tables on SQLite (batch mode) drops its triggers with it and
must create them again (sqlite.triggers(); tests/test_search_migration.py checks)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from sqlalchemy import Connection, text

BATCH = 20_000  # rows a statement: each commits nothing, only the migration does


def install(connection: Connection, progress: bool | None = None) -> None:
    """The index, with every existing row indexed, in the caller's transaction: it is
    complete when the migration commits, or not there at all."""
    show = sys.stderr.isatty() if progress is None else progress
    if connection.dialect.name == "sqlite":
        _install_sqlite(connection, show)
    else:
        _install_postgres(connection, show)


def _install_sqlite(connection: Connection, show: bool) -> None:
    from mailgate.search import sqlite

    for statement in [*sqlite.SETUP, *sqlite.triggers()]:
        connection.execute(text(statement))
    spans = {t: connection.execute(text(sqlite.id_range(t))).one() for t in sqlite.SOURCES}
    total = sum(last - first + 1 for first, last in spans.values() if first is not None)
    with _progress(total, show) as advance:
        for table, (first, last) in spans.items():
            if first is None:
                continue
            for start in range(first, last + 1, BATCH):
                end = min(start + BATCH, last + 1)
                connection.execute(text(sqlite.backfill(table)), {"first": start, "last": end})
                advance(table, end - start)


def _install_postgres(connection: Connection, show: bool) -> None:
    from mailgate.search import postgres

    # unaccent is a trusted extension: the database's owner may create it.
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    schema, unaccent_schema = connection.execute(
        text(
            "SELECT current_schema(), extnamespace::regnamespace::text FROM pg_extension "
            "WHERE extname = 'unaccent'"
        )
    ).one()
    for statement in postgres.setup(schema, unaccent_schema):
        connection.execute(text(statement))
    counts = {
        t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
        for t in postgres.SOURCES
    }
    with _progress(sum(counts.values()), show) as advance:
        for table, count in counts.items():  # each index built in one pass over its table
            connection.execute(text(postgres.index(table)))
            # Statistics on the indexed expressions: without them the planner guessed a
            # common word's 217,000 matching mails as 10,000 and chose plans for that.
            connection.execute(text(f"ANALYZE {table}"))
            advance(table, count)


def purge(connection: Connection) -> None:
    """Rewrite the index without what was deleted from it: FTS5 only marks a deleted row's
    words as gone until its segments merge, and erased words must not stay in the file
    (`customers forget`). It rewrites the whole index: seconds for 100,000 articles. On
    PostgreSQL the old row versions go as the article's own do, by (auto)vacuum."""
    if connection.dialect.name == "sqlite":
        connection.execute(text("INSERT INTO search_fts(search_fts) VALUES ('optimize')"))


def remove(connection: Connection) -> None:
    from mailgate.search import postgres, sqlite

    module = sqlite if connection.dialect.name == "sqlite" else postgres
    for statement in module.drop():
        connection.execute(text(statement))


class _progress:
    """A rich progress bar on stderr when shown; else nothing."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show = total, show

    def __enter__(self) -> Callable[[str, int], None]:
        if self.show:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("indexing for search", total=self.total)
        return self.advance

    def advance(self, table: str, count: int) -> None:
        if self.show:
            self.bar.update(self.task, advance=count, description=f"indexing {table}")

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self.bar.stop()
