"""Reports on a large desk: `stats`, `tickets list --status open` and `export --format xlsx`
on a generated SQLite database, with the export's peak memory against one a tenth the size."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from mailgate.config import Config, DatabaseConfig, OutboundConfig, PathsConfig, SmtpConfig
from mailgate.outbound.context import Context
from mailgate.reports import export, stats, views
from mailgate.service.app import build_context
from mailgate.store.models import Agent, Article, Contact, Organisation, Ticket, TimeEntry

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAYS = 90
CATEGORIES = ("billing", "shop", "hardware", "software", "accounts", None)
CHUNK = 5000
T = TypeVar("T")


def bench_config(work: Path) -> Config:
    return Config(
        source="(benchmark)",
        database=DatabaseConfig(url=f"sqlite:///{work}/stats.db"),
        paths=PathsConfig(data_dir=str(work / "data")),
        smtp=SmtpConfig(addresses=["support@example.com"]),
        outbound=OutboundConfig(
            transport="file", directory=str(work / "sent"), from_="Support <support@example.com>"
        ),
    )


# Data ----------------------------------------------------------------------------------------


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert(conn: Connection, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for chunk in _chunks(rows):
        conn.execute(insert(table), chunk)
        count += len(chunk)
    return count


def _people(conn: Connection, orgs: int, contacts: int, agents: int) -> None:
    start = NOW - timedelta(days=400)
    conn.execute(
        insert(Agent.__table__),  # type: ignore[attr-defined]
        [
            {"id": i, "email": f"agent{i}@example.com", "name": f"Agent {i}", "created_at": start}
            for i in range(1, agents + 1)
        ],
    )
    conn.execute(
        insert(Organisation.__table__),  # type: ignore[attr-defined]
        [{"id": i, "name": f"Customer {i} GmbH", "created_at": start} for i in range(1, orgs + 1)],
    )
    conn.execute(
        insert(Contact.__table__),  # type: ignore[attr-defined]
        [
            {
                "id": i,
                "email": f"user{i}@customer{i % orgs + 1}.example",
                "organisation_id": i % orgs + 1,
                "created_at": start,
            }
            for i in range(1, contacts + 1)
        ],
    )


def _ticket(rng: random.Random, i: int, contacts: int, orgs: int, agents: int) -> dict[str, Any]:
    """One ticket: weekdays busier than weekends, older tickets mostly done."""
    while True:
        created = NOW - timedelta(seconds=rng.uniform(0, DAYS * 86400))
        if created.weekday() < 5 or rng.random() < 0.3:
            break
    age_days = (NOW - created).total_seconds() / 86400
    priority = rng.choices("ABC", weights=(15, 55, 30))[0]
    done = rng.random() < min(0.95, age_days / 10)
    status = (
        rng.choice(("delivered", "closed", "closed"))
        if done
        else rng.choice(("open", "working", "working", "hold"))
    )
    answer = created + timedelta(minutes=rng.expovariate(1 / 240))
    first_response = answer if answer < NOW and rng.random() < 0.9 else None
    resolved = None
    if done:
        resolved = min(NOW, created + timedelta(hours=rng.expovariate(1 / 30)))
    last = resolved or first_response or created
    contact = rng.randrange(1, contacts + 1)
    return {
        "id": i,
        "number": 1000 + i,
        "subject": f"Request {i}: {rng.choice(('printer', 'invoice', 'login', 'order'))} issue",
        "status": status,
        "priority": priority,
        "type": rng.choice(("bug", "help", "help", "enhancement", None)),
        "category": rng.choice(CATEGORIES),
        "organisation_id": contact % orgs + 1,
        "requester_id": contact,
        "assignee_id": rng.randrange(1, agents + 1) if rng.random() < 0.9 else None,
        "billable": rng.random() < 0.3,
        "source": "smtp",
        "created_at": created,
        "updated_at": last,
        "last_action_by": "staff" if first_response and rng.random() < 0.6 else "customer",
        "last_action_at": last,
        "first_response_at": first_response,
        "resolved_at": resolved,
    }


def build(ctx: Context, tickets: int, seed: int) -> tuple[int, int]:
    """Bulk-insert the desk; returns (articles, time entries) written."""
    rng = random.Random(seed)
    orgs, contacts, agents = max(1, tickets // 200), max(1, tickets // 50), 12
    rows: list[dict[str, Any]] = []
    with ctx.store.engine.begin() as conn:
        _people(conn, orgs, contacts, agents)
        rows = [_ticket(rng, i, contacts, orgs, agents) for i in range(1, tickets + 1)]
        _insert(conn, Ticket.__table__, iter(rows))  # type: ignore[attr-defined]
        articles = _insert(conn, Article.__table__, _articles(rng, rows))  # type: ignore[attr-defined]
        entries = _insert(conn, TimeEntry.__table__, _time_entries(rng, rows, agents))  # type: ignore[attr-defined]
    return articles, entries


def _articles(rng: random.Random, tickets: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for t in tickets:
        for n in range(rng.choice((1, 2, 3, 3, 4, 5))):
            at = t["created_at"] + timedelta(hours=n * rng.uniform(0.5, 24))
            yield {
                "ticket_id": t["id"],
                "direction": "customer" if n % 2 == 0 else "staff",
                "from_addr": f"user{t['requester_id']}@example.com",
                "to_addrs": "support@example.com",
                "subject": t["subject"],
                "date": at,
                "message_id": f"<{t['id']}.{n}@bench.example>",
                "text": "Hello,\n\nthe printer does not print.\n\nRegards\n" * 4,
                "created_at": at,
            }


def _time_entries(
    rng: random.Random, tickets: list[dict[str, Any]], agents: int
) -> Iterator[dict[str, Any]]:
    for t in tickets:
        if rng.random() < 0.25:
            yield {
                "ticket_id": t["id"],
                "agent_id": rng.randrange(1, agents + 1),
                "minutes": rng.choice((15, 30, 45, 60, 90)),
                "billable": t["billable"],
                "created_at": t["created_at"] + timedelta(hours=1),
            }


# Measurements --------------------------------------------------------------------------------


def median_seconds(step: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_stats(ctx: Context) -> dict[str, Any]:
    with ctx.store.session() as session:
        return stats.collect(session, ctx.config, NOW)


def run_list(ctx: Context) -> str:
    flt = views.make_filter(status=("open",))
    with ctx.store.session() as session:
        return json.dumps(views.ticket_rows(session, ctx.config, flt, NOW))


def run_export(ctx: Context, path: Path, limit: int | None) -> export.Counts:
    flt = views.make_filter(limit=limit)
    with ctx.store.session() as session:
        return export.write_file(session, ctx.config, flt, NOW, path, "xlsx")


class RssPeak:
    """The process's resident memory sampled every few milliseconds while a step runs (Linux
    /proc): its peak above the level at the start. Without /proc, Python allocations traced
    by tracemalloc stand in (slower, and blind to memory held outside Python objects)."""

    STATM = Path("/proc/self/statm")

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.peak = 0
        self.running = False

    def rss(self) -> int:
        return int(self.STATM.read_text().split()[1]) * self.page

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

    def measure(self, step: Callable[[], T]) -> tuple[T, float, int, str]:
        """The step's result, seconds, peak growth in bytes and what was measured."""
        gc.collect()
        if not self.STATM.exists():
            tracemalloc.start()
            start = time.perf_counter()
            result = step()
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return result, seconds, peak, "tracemalloc peak"
        base = self.peak = self.rss()
        self.running = True
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            start = time.perf_counter()
            result = step()
            seconds = time.perf_counter() - start
        finally:
            self.running = False
            sampler.join()
        return result, seconds, max(self.peak, self.rss()) - base, "RSS growth"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100000, help="how many (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    parser.add_argument("--dir", help="work directory (default: a temporary one, removed)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mailgate-stats-") as tmp:
        work = Path(args.dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "stats.db").unlink(missing_ok=True)
        ctx = build_context(bench_config(work))
        try:
            report(ctx, work, args.tickets, args.seed)
        finally:
            ctx.store.dispose()
    return 0


def report(ctx: Context, work: Path, tickets: int, seed: int) -> None:
    print("mailgate stats benchmark")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}"
    )
    start = time.perf_counter()
    articles, entries = build(ctx, tickets, seed)
    print(
        f"data: {tickets} tickets over {DAYS} days, {articles} articles, {entries} time entries, "
        f"built in {time.perf_counter() - start:.1f} s"
    )
    print()
    print(f"stats (median of 3):            {median_seconds(lambda: run_stats(ctx)):8.3f} s")
    rows = len(json.loads(run_list(ctx)))
    seconds = median_seconds(lambda: run_list(ctx))
    print(f"tickets list --status open:     {seconds:8.3f} s  ({rows} rows as JSON)")
    small = max(1, tickets // 10)
    for label, limit in ((f"export xlsx, {small} tickets", small), ("export xlsx, all", None)):
        path = work / f"export-{limit or 'all'}.xlsx"
        counts, seconds, peak, what = RssPeak().measure(
            lambda path=path, limit=limit: run_export(ctx, path, limit)
        )
        print(
            f"{label + ':':<32}{seconds:8.3f} s  {what} {peak / 1e6:6.1f} MB, "
            f"{counts.tickets} tickets, {counts.articles} articles, "
            f"{path.stat().st_size / 1e6:.1f} MB file"
        )


if __name__ == "__main__":
    sys.exit(main())
