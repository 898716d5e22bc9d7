"""Create the search index on a database and index the rows already there (migration 0016).

On a terminal a progress bar shows each table's rows as they are indexed; elsewhere (the
daemon migrating itself, a log) one line per table."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

from sqlalchemy import Connection, text

BATCH = 20_000  # rows a statement: each commits nothing, only the migration does


def dialect(connection: Connection) -> ModuleType:
    from mailgate.search import postgres, sqlite

    return sqlite if connection.dialect.name == "sqlite" else postgres


def install(connection: Connection, progress: bool | None = None) -> None:
    """The index's tables and triggers, then every existing row indexed, in the caller's
    transaction: the index is complete when the migration commits, or not there at all."""
    sql = dialect(connection)
    for statement in [*sql.SETUP, *sql.triggers()]:
        connection.execute(text(statement))
    spans = {t: connection.execute(text(sql.id_range(t))).one() for t in sql.SOURCES}
    total = sum(last - first + 1 for first, last in spans.values() if first is not None)
    show = sys.stderr.isatty() if progress is None else progress
    with _progress(total, show) as advance:
        for table, (first, last) in spans.items():
            if first is None:
                continue
            for start in range(first, last + 1, BATCH):
                end = min(start + BATCH, last + 1)
                connection.execute(text(sql.backfill(table)), {"first": start, "last": end})
                advance(table, end - start)


def remove(connection: Connection) -> None:
    for statement in dialect(connection).drop():
        connection.execute(text(statement))


class _progress:
    """A rich progress bar on a terminal; else one line per table when it is done."""

    def __init__(self, total: int, show: bool) -> None:
        self.total, self.show, self.done = total, show, {}

    def __enter__(self) -> Callable[[str, int], None]:
        if self.show:
            from rich.progress import Progress

            self.bar = Progress(transient=False)
            self.bar.start()
            self.task = self.bar.add_task("indexing for search", total=self.total)
        return self.advance

    def advance(self, table: str, count: int) -> None:
        self.done[table] = self.done.get(table, 0) + count
        if self.show:
            self.bar.update(self.task, advance=count, description=f"indexing {table}")

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self.bar.stop()
