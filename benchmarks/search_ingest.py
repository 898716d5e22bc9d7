"""The ingest rate with the search index against without it: generated mail through the
pipeline as `mailgate ingest` runs it (parsing ahead), on one new database at the newest
schema, in rounds with what the index migration adds (triggers, indexes) in place, dropped,
dropped again, restored."""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from corpus import NEW, SUPPORT, generate_samples
from ingest import run_pipeline
from search_dbs import PRE_INDEX, Db, create, drop, migrate, postgres_db, sqlite_db

from mailgate.config import (
    Config,
    DatabaseConfig,
    LoopsConfig,
    OutboundConfig,
    PathsConfig,
    SmtpConfig,
)
from mailgate.outbound.context import Context
from mailgate.service.app import build_context

WITH, WITHOUT = "with", "without"
ABBA = (WITH, WITHOUT, WITHOUT, WITH)  # a drift of the machine weighs on both alike
WARM_UP = 10  # messages first, uncounted: imports, the parsing process, caches


@dataclass
class IngestFigure:
    kind: str
    messages: int  # a round
    rounds: tuple[str, ...]
    rates: dict[str, list[float]] = field(default_factory=lambda: {WITH: [], WITHOUT: []})
    # PostgreSQL's CPU seconds a message, each round (when the server runs on this machine)
    server_cpu: dict[str, list[float]] = field(default_factory=lambda: {WITH: [], WITHOUT: []})
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (trigger, table)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def all_done(self) -> bool:
        return set(self.outcomes) == {"done"}

    @property
    def ratio(self) -> float | None:
        if not self.rates[WITH] or not self.rates[WITHOUT]:
            return None
        return statistics.median(self.rates[WITH]) / statistics.median(self.rates[WITHOUT])

    def lines(self) -> list[str]:
        head = (
            f"ingest ({self.kind}): {self.messages} generated mails a round through the "
            "pipeline (`mailgate ingest`, parsing ahead) into one new database, rounds "
            + ", ".join(self.rounds)
            + " what the index migration adds (the median rate of each: a burst of other "
            "work on the machine moves a mean)"
        )
        out = [head]
        for mode in (WITH, WITHOUT):
            rates = self.rates[mode]
            if rates:
                each = ", ".join(f"{r:.1f}" for r in rates)
                rate = statistics.median(rates)
                out.append(f"  {mode} index: {rate:.1f} messages/s ({each})")
        if all(self.server_cpu.values()):
            each = {m: statistics.median(v) * 1000 for m, v in self.server_cpu.items()}
            out.append(
                f"  PostgreSQL's CPU a message: {each[WITH]:.2f} ms with the index, "
                f"{each[WITHOUT]:.2f} ms without (the median round: what the index costs the "
                "server, which the rates show only beside the rest of storing a mail)"
            )
        if self.outcomes:
            counted = ", ".join(f"{name} {n}" for name, n in self.outcomes.most_common())
            out.append(f"  outcomes: {counted}" + ("" if self.all_done else " (NOT ALL DONE)"))
        if self.dropped:
            tables = sorted({table for _, table in self.dropped})
            kinds = Counter(what.split()[0] for what, _ in self.dropped)
            plural = {"index": "indexes", "trigger": "triggers"}
            made = ", ".join(f"{n} {plural[k] if n > 1 else k}" for k, n in kinds.items())
            out.append(f"  dropped for the rounds without: {made} (on {', '.join(tables)})")
        else:
            out.append(
                "  the index migration adds no trigger or index: every round ran with the index"
            )
        return out


def ingest_config(db: Db, work: Path) -> Config:
    """mailgate on `db`, its data and sent mail (as files) under `work`."""
    return Config(
        source="(benchmark)",
        database=DatabaseConfig(url=db.url),
        paths=PathsConfig(data_dir=str(work / "ingest-data")),
        smtp=SmtpConfig(addresses=[SUPPORT]),
        # Every round answers every new request: no rate limit cuts the later rounds' work.
        loops=LoopsConfig(max_auto_mails_per_hour=10**6, max_auto_mails_per_hour_total=10**7),
        outbound=OutboundConfig(
            transport="file", directory=str(work / "ingest-sent"), from_=f"Support <{SUPPORT}>"
        ),
    )


# What the index migration adds: (kind, name, table, the statement that makes it) ----------


def server_cpu() -> float | None:
    """CPU seconds of the PostgreSQL processes on this machine so far (a backend that
    ended counts in its parent's), or None when there are none."""
    total, found = 0, False
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        if not stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            continue
        found = True
        user, system, children_user, children_system = stat[stat.rindex(")") + 2 :].split()[11:15]
        total += int(user) + int(system) + int(children_user) + int(children_system)
    return total / os.sysconf("SC_CLK_TCK") if found else None


def index_objects(db: Db) -> list[tuple[str, str, str, str]]:
    """Every trigger and index of the schema (those of SQLite's own tables aside)."""
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path)
        try:
            rows = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                "WHERE type IN ('trigger', 'index') AND sql IS NOT NULL"
            ).fetchall()
        finally:
            conn.close()
        return [(kind, name, table, sql) for kind, name, table, sql in rows]
    with psycopg.connect(db.dsn) as pg:
        found = pg.execute(
            "SELECT 'trigger', tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) "
            "FROM pg_trigger WHERE NOT tgisinternal UNION ALL "
            "SELECT 'index', indexname, tablename, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public'"
        ).fetchall()
    return [(kind, name, table, sql) for kind, name, table, sql in found]


def execute(db: Db, statements: list[str]) -> None:
    """The statements in one transaction."""
    if db.kind == "sqlite":
        conn = sqlite3.connect(db.path)
        try:
            for sql in statements:
                conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
        return
    with psycopg.connect(db.dsn) as pg:
        for sql in statements:
            pg.execute(sql)  # type: ignore[arg-type]


def drop_sql(db: Db, kind: str, name: str, table: str) -> str:
    """The statement that drops an index or a trigger (as index_objects lists them)."""
    if kind == "index":
        return f'DROP INDEX "{name}"'
    return f'DROP TRIGGER "{name}"' + ("" if db.kind == "sqlite" else f" ON {table}")


def added_by_index(db: Db) -> list[tuple[str, str, str, str]]:
    """The triggers and indexes the migrations after 0015 make (the database at 0015 now;
    migrated to the newest revision on return)."""
    migrate(db, PRE_INDEX)
    objects = index_objects(db)
    before = {(kind, name) for kind, name, _, _ in objects}
    tables = {table for _, _, table, _ in objects}
    migrate(db, "head")
    # Tables the index brings (PostgreSQL's search_doc) keep their own indexes: without the
    # triggers nothing writes to them.
    return [o for o in index_objects(db) if (o[0], o[1]) not in before and o[2] in tables]


def ingest_round(ctx: Context, count: int, seed: int, first: int) -> tuple[float, list[Any], int]:
    """`count` generated mails (new requests numbered from `first`, replies to them) through
    the pipeline as `mailgate ingest` runs it; (seconds, outcomes, new requests among them)."""
    samples = generate_samples(count, seed, first)
    start = time.perf_counter()
    outcomes = run_pipeline(ctx, [s.raw for s in samples], lambda: None, True)
    return time.perf_counter() - start, outcomes, sum(s.kind == NEW for s in samples)


def measure_ingest(
    kind: str, work: Path, server: str, messages: int, seed: int, groups: int = 2
) -> IngestFigure:
    """`groups` times the rounds with, without, without, with the index's triggers."""
    db = sqlite_db(work / "ingest.db") if kind == "sqlite" else postgres_db(server)
    create(db)
    figure = IngestFigure(kind, messages, ABBA * groups)
    try:
        found = added_by_index(db)
        figure.dropped = [(f"{kind} {name}", table) for kind, name, table, _ in found]
        cfg = ingest_config(db, work)
        ctx = build_context(cfg)
        first = cfg.tickets.start
        try:
            state = WITH
            for number, mode in enumerate(("warm-up", *figure.rounds)):
                wanted = WITHOUT if mode == WITHOUT and found else WITH
                if wanted != state:
                    drops = [drop_sql(db, kind, name, table) for kind, name, table, _ in found]
                    execute(db, drops if wanted == WITHOUT else [o[3] for o in found])
                    state = wanted
                count = WARM_UP if mode == "warm-up" else messages
                cpu = server_cpu() if kind == "postgres" else None
                seconds, outcomes, new = ingest_round(ctx, count, seed * 100 + number, first)
                first += new
                used = server_cpu() if cpu is not None else None
                if mode != "warm-up":
                    figure.rates[wanted].append(count / seconds)
                    figure.outcomes.update(o.status for o in outcomes)
                    if cpu is not None and used is not None:
                        figure.server_cpu[wanted].append((used - cpu) / count)
        finally:
            ctx.store.dispose()
    finally:
        drop(db)
        for name in ("ingest-data", "ingest-sent"):
            shutil.rmtree(work / name, ignore_errors=True)
    return figure
