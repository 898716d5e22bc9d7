"""On a desk of years the reports read through indexes, not every ticket or time entry
(migrations 0023 and 0024, and the queries written for them; benchmarks/scale.py measures them): the
plans SQLite makes for `stats`, `report time` and `tickets list --waiting`, and the merge
level of the SQLite search index. SQLite plans without statistics, as a desk's database
has none unless someone runs ANALYZE: the plans here are the ones a desk gets."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event

from mailgate.outbound.context import Context
from mailgate.reports import report, stats, views
from mailgate.store.database import MIGRATIONS


def plans(ctx: Context, run: Callable[[], object]) -> list[tuple[str, list[str]]]:
    """Each SELECT that `run` makes, with SQLite's plan for it (one line a step)."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(ctx.store.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(ctx.store.engine, "before_cursor_execute", capture)
    with ctx.store.engine.connect() as conn:
        return [
            (sql, [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)])
            for sql, params in seen
        ]


def plan_of(found: list[tuple[str, list[str]]], part: str) -> list[str]:
    matching = [plan for sql, plan in found if part in sql]
    assert len(matching) == 1, [sql for sql, _ in found]
    return matching[0]


def test_stats_reads_no_ticket_table_whole(sqlite_ctx: Context) -> None:
    def run() -> None:
        with sqlite_ctx.store.session() as session:
            stats.collect(session, sqlite_ctx.config, sqlite_ctx.clock())

    found = plans(sqlite_ctx, run)
    # Counted from the kept changes (migration 0024), not from the tickets.
    grouped = plan_of(found, "GROUP BY ticket_tally.category")
    assert grouped[0] == "SCAN ticket_tally", grouped
    # The backlog: the tickets unresolved or resolved in the window, by the resolution's
    # index; filtered by creation as well, SQLite took every ticket created before today.
    backlog = plan_of(found, "resolved_at IS NULL")
    assert any("ix_ticket_resolved_at" in step for step in backlog), backlog
    assert not any("ix_ticket_created_at" in step for step in backlog), backlog
    assert all(step != "SCAN ticket" for _, plan in found for step in plan), found


def test_a_months_time_is_found_by_its_index(sqlite_ctx: Context) -> None:
    month = report.Month.parse("2026-11", "UTC")

    def run() -> None:
        with sqlite_ctx.store.session() as session:
            report.time_report(session, "CID", month)

    entries = plan_of(plans(sqlite_ctx, run), "FROM timeentry JOIN ticket")
    assert any("timeentry USING INDEX ix_timeentry_created_at" in s for s in entries), entries


def test_waiting_tickets_are_found_by_status(sqlite_ctx: Context) -> None:
    flt = views.make_filter(waiting="us")

    def run() -> None:
        with sqlite_ctx.store.session() as session:
            views.ticket_rows(session, sqlite_ctx.config, flt, sqlite_ctx.clock())

    listed = plan_of(plans(sqlite_ctx, run), "ticket.last_action_by =")
    assert any("ticket USING INDEX ix_ticket_status" in step for step in listed), listed


def _automerge(ctx: Context) -> list[int]:
    path = ctx.config.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return [
            int(conn.execute(f"SELECT v FROM {t}_config WHERE k = 'automerge'").fetchone()[0])
            for t in ("search_fts", "search_parts")
        ]


def test_the_search_index_merges_at_eight_segments(sqlite_ctx: Context) -> None:
    assert _automerge(sqlite_ctx) == [8, 8]
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    alembic.attributes["engine"] = sqlite_ctx.store.engine
    command.downgrade(alembic, "0022")
    assert _automerge(sqlite_ctx) == [4, 4]  # FTS5's default, as before
    command.upgrade(alembic, "head")
    assert _automerge(sqlite_ctx) == [8, 8]
