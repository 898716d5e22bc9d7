"""The search benchmark's 20 queries, filled in with values the generated desk holds, and
their latency (p50, p95 of repeated runs after a warm-up) through mailgate's search engine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from search_dbs import Db
from search_desk import RARE_WORD, Desk, order_number
from sqlalchemy import event, text

Row = tuple[str, str, int, float, float]  # label, query, hits, p50 ms, p95 ms
COUNT_LIMIT = 10_000  # hits are counted up to this many
WARM_UP = 2

# (what it stands for, the query with {probes} filled in)
QUERIES: list[tuple[str, str]] = [
    ("rare word", RARE_WORD),
    ("common word, de", "drucker"),
    ("common word, en", "printer"),
    ("two words", "vpn homeoffice"),
    ("phrase", '"druckt nicht mehr"'),
    ("prefix, compound", "lizenz*"),
    ("umlaut folded", "mueller"),
    ("umlaut stripped", "schroder"),
    ("address", "from:{address}"),
    ("domain", "from:{domain}"),
    ("order number", "{order}"),
    ("ref:", "ref:{order}"),
    ("CID", "CID-{number}"),
    ("file name", "file:Lieferschein"),
    ("file name, one", "file:{invoice}"),
    ("part of a number", "*{order_part}"),
    ("combined filters", "from:{domain} is:{status} after:{since}"),
    ("word and filters", "rechnung is:open after:2026-10-01"),
    ("excluded word", "vpn -homeoffice"),
    ("org:", 'org:"{org}"'),
    ("assignee:", "assignee:{agent} is:open"),
]


def probes(db: Db, desk: Desk) -> dict[str, str]:
    """Values to look for: a contact in the middle of the desk, its domain and organisation,
    an order number and a ticket that exist, a file name that occurs once or so."""
    contact = desk.contacts[len(desk.contacts) // 3]
    _, org, domain = desk.orgs[contact.org - 1]
    middle = max(3, desk.tickets // 2 // 3 * 3)
    store = db.store()
    try:
        with store.session() as session:
            # A status and a day that tickets from the domain have: the filters narrow the
            # domain's tickets rather than rule them all out.
            status, last = session.execute(
                text(
                    "SELECT t.status, t.last_action_at FROM ticket t JOIN article a "
                    "ON a.ticket_id = t.id WHERE a.from_addr = :address "
                    "ORDER BY t.id DESC LIMIT 1"
                ),
                {"address": contact.email},
            ).one()
            invoice = session.execute(
                text(
                    "SELECT filename FROM attachment WHERE filename LIKE 'Rechnung_RE-%' "
                    "AND id >= (SELECT max(id) / 2 FROM attachment) ORDER BY id LIMIT 1"
                )
            ).scalar()
    finally:
        store.dispose()
    return {
        "address": contact.email,
        "domain": domain,
        "org": org,
        "order": order_number(middle),
        "order_part": order_number(middle)[-6:],
        "number": str(1000 + middle),
        "invoice": invoice or "Rechnung_RE-2025-000000.pdf",
        "agent": desk.agents[3].email,
        "status": status,
        "since": (_moment(last) - timedelta(days=60)).date().isoformat(),
    }


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _engine() -> tuple[Any, Any] | None:
    try:
        from mailgate.search.engine import search
        from mailgate.search.query import parse
    except ImportError:
        return None
    return parse, search


def has_engine() -> bool:
    return _engine() is not None


def time_queries(db: Db, values: dict[str, str], repeat: int, limit: int) -> Iterator[Row]:
    """(label, query, hits, p50 ms, p95 ms) for each query, as each is done."""
    engine = _engine()
    assert engine is not None, "no search engine in this mailgate"
    parse, search = engine
    store = db.store()
    try:
        for label, template in QUERIES:
            query_text = template.format(**values)

            def run(limit: int = limit, query_text: str = query_text) -> int:
                with store.session() as session:
                    return len(search(session, parse(query_text), limit=limit))

            hits = run(COUNT_LIMIT)
            for _ in range(WARM_UP):
                run()
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                run()
                times.append((time.perf_counter() - start) * 1000)
            yield (label, query_text, hits, *_percentiles(times))
    finally:
        store.dispose()


def _percentiles(times: list[float]) -> tuple[float, float]:
    if len(times) < 2:
        return times[0], times[0]
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), cuts[18]


def explain(db: Db, query_text: str, limit: int) -> list[str]:
    """The plan of each SELECT the engine runs for the query: EXPLAIN QUERY PLAN on SQLite,
    EXPLAIN ANALYZE (run, with its timings) on PostgreSQL."""
    engine = _engine()
    if engine is None:
        return []
    parse, search = engine
    store = db.store()
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    lines = []
    try:
        event.listen(store.engine, "before_cursor_execute", capture)
        with store.session() as session:
            search(session, parse(query_text), limit=limit)
        event.remove(store.engine, "before_cursor_execute", capture)
        prefix = "EXPLAIN QUERY PLAN " if db.kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
        with store.engine.connect() as conn:
            for number, (statement, params) in enumerate(seen, 1):
                rows = conn.exec_driver_sql(prefix + statement, params).fetchall()
                lines.append(f"  statement {number} of {len(seen)}:")
                lines += _plan_lines(db, rows)
    finally:
        store.dispose()
    return lines


def _plan_lines(db: Db, rows: list[Any]) -> list[str]:
    if db.kind != "sqlite":
        return [f"    {row[0]}" for row in rows]
    depth: dict[int, int] = {0: 0}
    out = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        out.append("    " + "  " * (depth[node] - 1) + detail)
    return out
