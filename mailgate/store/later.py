"""Rows a transaction writes at its end, each kind by one statement for the whole batch.

The worker's transaction handles a batch of mails, and each mail adds rows that nothing in
the transaction reads back as objects: its events, its queued mail. Written as they come,
each is a statement of its own, and SQLAlchemy's work around a statement costs several
times what the database does with it. A transaction that opts in (`defer_writes`) collects
them instead and writes each kind as one multi-row statement: before it commits, and
before any read of a table they go to, so that what the transaction reads is what it wrote.

Opt-in, because only a transaction without savepoints may hold rows back: a savepoint
rolled back would not take back rows that were still waiting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Executable, TextClause, event
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session

_PENDING = "mailgate.later"  # session.info: the rows held back, by kind, in order

Rows = list[dict[str, Any]]
Writer = Callable[[Session, Rows], None]


@dataclass
class _Kind:
    write: Writer
    tables: frozenset[str]
    rows: Rows = field(default_factory=list)


def defer_writes(session: Session) -> None:
    """From now on, `later` rows of this session wait for one statement each kind."""
    session.info.setdefault(_PENDING, {})


def later(session: Session, write: Writer, tables: Iterable[str], row: dict[str, Any]) -> None:
    """Write `row` by `write(session, rows)`: at once, or with the others of its kind at the
    end of a transaction that defers writes. `tables`: the tables `write` writes to."""
    pending: dict[Writer, _Kind] | None = session.info.get(_PENDING)
    if pending is None:
        write(session, [row])
        return
    kind = pending.get(write)
    if kind is None:
        kind = pending[write] = _Kind(write, frozenset(tables))
    kind.rows.append(row)


def write_pending(session: Session, tables: frozenset[str] | None = None) -> None:
    """Write what waits (only what goes to `tables`, when given), in the order of kinds."""
    pending: dict[Writer, _Kind] | None = session.info.get(_PENDING)
    if not pending:
        return
    for write, kind in list(pending.items()):
        if tables is None or kind.tables & tables:
            del pending[write]
            write(session, kind.rows)


def before_reading(session: Session, statement: Executable) -> None:
    """Rows held back for the tables a statement reads or changes are written first."""
    if session.info.get(_PENDING):
        write_pending(session, tables_touched(statement))


def tables_touched(statement: Executable) -> frozenset[str] | None:
    """The tables a statement names (in subqueries too); None (all of them) for plain SQL
    text, which does not say."""
    if isinstance(statement, TextClause):
        return None
    return _tables(statement)


@functools.lru_cache(maxsize=512)
def _tables(statement: Executable) -> frozenset[str]:
    """Cached by the statement: the ones built once and run for each mail cost nothing
    after the first."""
    return frozenset(table.name for table in find_tables(statement, include_aliases=True))


@event.listens_for(Session, "do_orm_execute")
def _before_orm_read(state: ORMExecuteState) -> None:
    before_reading(state.session, state.statement)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending.clear()
