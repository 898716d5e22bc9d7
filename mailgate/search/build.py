"""Create the search index on a database and index the rows already there (migrations 0016,
and 0017 for PostgreSQL's documents of tickets, 0018 for parts of words; 0019 renews the
documents' functions).

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
    _backfill_sqlite(connection, "search_fts", show)


def _backfill_sqlite(connection: Connection, fts: str, show: bool) -> None:
    from mailgate.search import sqlite

    tables = sqlite.SOURCES if fts == "search_fts" else sqlite.PART_SOURCES
    spans = {t: connection.execute(text(sqlite.id_range(t))).one() for t in tables}
    total = sum(last - first + 1 for first, last in spans.values() if first is not None)
    with _progress(total, show) as advance:
        for table, (first, last) in spans.items():
            if first is None:
                continue
            for start in range(first, last + 1, BATCH):
                end = min(start + BATCH, last + 1)
                statement = text(sqlite.backfill(table, fts))
                connection.execute(statement, {"first": start, "last": end})
                advance(table, end - start)


def install_parts(connection: Connection, progress: bool | None = None) -> None:
    """Revision 0018: the index of parts of words (`*schein`) over subjects, attachment
    names and references: an FTS5 table of runs of three characters on SQLite, pg_trgm's
    GIN indexes on PostgreSQL."""
    from mailgate.search import postgres, sqlite

    show = sys.stderr.isatty() if progress is None else progress
    if connection.dialect.name == "sqlite":
        for statement in [sqlite.PARTS_TABLE, *sqlite.triggers(sqlite.PARTS)]:
            connection.execute(text(statement))
        _backfill_sqlite(connection, sqlite.PARTS, show)
        return
    for statement in postgres.part_indexes():
        connection.execute(text(statement))


def remove_parts(connection: Connection) -> None:
    from mailgate.search import postgres, sqlite

    if connection.dialect.name == "sqlite":
        statements = sqlite.drop(sqlite.PARTS)
    else:
        statements = postgres.drop_part_indexes()
    for statement in statements:
        connection.execute(text(statement))


def _install_postgres(connection: Connection, show: bool) -> None:
    """Revision 0016 on PostgreSQL: the folding functions and the organisations' index (the
    tickets' documents are revision 0017's)."""
    from mailgate.search import postgres

    # unaccent is a trusted extension: the database's owner may create it.
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    schema, unaccent_schema = _schemas(connection)
    for statement in postgres.functions(schema, unaccent_schema):
        connection.execute(text(statement))
    connection.execute(text(postgres.organisation_index()))
    connection.execute(text("ANALYZE organisation"))


def install_documents(connection: Connection, progress: bool | None = None) -> None:
    """Revision 0017 on PostgreSQL: one document of words per ticket, written for every
    ticket there, then its index (built once over all of them: faster than kept row by row).
    Drops the expression indexes an earlier 0016 built."""
    from mailgate.search import postgres, postgres_documents

    if connection.dialect.name == "sqlite":
        return
    show = sys.stderr.isatty() if progress is None else progress
    for table in postgres.FIRST_INDEXES:
        connection.execute(text(f"DROP INDEX IF EXISTS search_{table}"))
    connection.execute(text(postgres_documents.TABLE))
    renew_documents(connection)
    first, last = connection.execute(text("SELECT min(id), max(id) FROM ticket")).one()
    total = last - first + 1 if first is not None else 0
    with _progress(total, show) as advance:
        for start in range(first or 0, (last or -1) + 1, BATCH // 4):
            end = min(start + BATCH // 4, last + 1)
            connection.execute(text(postgres_documents.fill(start, end)))
            advance("tickets", end - start)
    for statement in postgres_documents.INDEXES:
        connection.execute(text(statement))
    # Statistics on the documents' words: the planner reads the newest tickets in order for
    # a common word and looks a rare one up in the index, by how often each word is there.
    connection.execute(text("ANALYZE search_doc"))


def renew_documents(connection: Connection) -> None:
    """The functions and triggers that write PostgreSQL's documents, and how the table
    stores them, as this version has them (revision 0019 on a database that 0016 and 0017
    gave the earlier ones). The documents themselves stay: the words written are the same."""
    from mailgate.search import postgres, postgres_documents

    if connection.dialect.name == "sqlite":
        return
    schema, unaccent_schema = _schemas(connection)
    statements = [
        *postgres.functions(schema, unaccent_schema),
        *postgres_documents.STORAGE,
        *postgres_documents.functions(schema),
        *postgres_documents.triggers(schema),
    ]
    for statement in statements:
        connection.execute(text(statement))


def _schemas(connection: Connection) -> tuple[str, str]:
    """The schema mailgate's tables are in, and unaccent's."""
    schema, unaccent_schema = connection.execute(
        text(
            "SELECT current_schema(), extnamespace::regnamespace::text FROM pg_extension "
            "WHERE extname = 'unaccent'"
        )
    ).one()
    return schema, unaccent_schema


def remove_documents(connection: Connection) -> None:
    from mailgate.search import postgres_documents

    if connection.dialect.name != "sqlite":
        for statement in postgres_documents.drop():
            connection.execute(text(statement))


def purge(connection: Connection) -> None:
    """Rewrite the index without what was deleted from it: FTS5 only marks a deleted row's
    words as gone until its segments merge, and erased words must not stay in the file
    (`customers forget`). It rewrites the whole index: seconds for 100,000 articles. On
    PostgreSQL the old row versions go as the article's own do, by (auto)vacuum."""
    if connection.dialect.name == "sqlite":
        connection.execute(text("INSERT INTO search_fts(search_fts) VALUES ('optimize')"))


def remove(connection: Connection) -> None:
    from mailgate.search import postgres, sqlite

    if connection.dialect.name == "sqlite":
        statements = sqlite.drop()
    else:  # with the expression indexes an earlier 0016 built
        statements = [f"DROP INDEX IF EXISTS search_{t}" for t in postgres.FIRST_INDEXES]
        statements += postgres.drop_functions()
    for statement in statements:
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
