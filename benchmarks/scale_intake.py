"""Mail into the big desk against mail into an empty database, in the same run: the ingest
path (`mailgate ingest`, search_ingest) in rounds empty, full, full, empty with the same
mails in each pair, and `mailgate run` taking SMTP (smtp_intake) on each database until
every acknowledgement is at a sink relay. What the mail added to the big desk is deleted
after, so a kept desk stays as it was generated."""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from corpus import generate
from search_dbs import Db, create, drop, migrate, postgres_db, sqlite_db
from search_ingest import WARM_UP, ingest_config, ingest_round
from servers import child, free_port, mailgate_toml
from smtp_intake import SINK_SERVER, measure, wait_until_drained
from sqlmodel import SQLModel

from mailgate.desk.tickets import TICKET_COUNTER
from mailgate.service.app import build_context

EMPTY, FULL = "empty", "full"


def abba(rounds: int) -> list[str]:
    """Empty, full, full, empty, ...: a drift of the machine weighs on both alike."""
    return [(EMPTY, FULL, FULL, EMPTY)[i % 4] for i in range(rounds)]


# Rows added, deleted again -------------------------------------------------------------------


def connect(db: Db) -> Any:
    """A plain connection (sqlite3 or psycopg): both take execute(sql).fetchone()."""
    return sqlite3.connect(db.path, timeout=60) if db.kind == "sqlite" else psycopg.connect(db.dsn)


def scalar(conn: Any, sql: str) -> Any:
    """The first column of the first row, None without a row."""
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Snapshot:
    """The highest id of each table, the ticket counter and the blobs, before mail came."""

    ids: dict[str, int]
    counter: int | None  # None: no ticket yet, the first one makes the counter
    blobs: frozenset[str]


def snapshot(db: Db) -> Snapshot:
    conn = connect(db)
    try:
        ids = {
            table.name: int(scalar(conn, f"SELECT coalesce(max(id), 0) FROM {table.name}"))
            for table in SQLModel.metadata.sorted_tables
            if "id" in table.columns
        }
        counter = scalar(conn, f"SELECT value FROM counter WHERE name = '{TICKET_COUNTER}'")
        blobs = frozenset(row[0] for row in conn.execute("SELECT sha256 FROM blob").fetchall())
    finally:
        conn.close()
    return Snapshot(ids, None if counter is None else int(counter), blobs)


def _deletes(before: Snapshot) -> Iterator[str]:
    """Children first: each table's new rows by id; a table without ids of its own (a
    ticket's references, a message's bytes) by the new rows it hangs on."""
    for table in reversed(SQLModel.metadata.sorted_tables):
        if table.name in before.ids:
            yield f"DELETE FROM {table.name} WHERE id > {before.ids[table.name]}"
            continue
        for key in table.foreign_keys:
            parent = key.column.table.name
            if key.column.name == "id" and parent in before.ids:
                limit = before.ids[parent]
                yield f"DELETE FROM {table.name} WHERE {key.parent.name} > {limit}"
    kept = ", ".join(f"'{sha}'" for sha in sorted(before.blobs)) or "''"
    yield f"DELETE FROM blob WHERE sha256 NOT IN ({kept})"


def restore(db: Db, before: Snapshot) -> int:
    """Delete what came after the snapshot (the search index follows by its triggers) and
    set the ticket counter back; returns the tickets deleted."""
    conn = connect(db)
    try:
        new = f"SELECT count(*) FROM ticket WHERE id > {before.ids['ticket']}"
        tickets = int(scalar(conn, new))
        if db.kind == "postgres":
            # No foreign key checked row by row: some references have no index on their
            # side (article.intake_id), and each deleted row would read a whole table. The
            # search index's triggers are off with them: its new documents go by hand.
            conn.execute("SET session_replication_role = replica")
            if scalar(conn, "SELECT to_regclass('search_doc') IS NOT NULL"):
                conn.execute(f"DELETE FROM search_doc WHERE ticket_id > {before.ids['ticket']}")
        for sql in _deletes(before):
            conn.execute(sql)
        # `stats`' counts as the tickets left say: deleting by id cannot take back a fold of
        # the counts (a daemon's job) that happened between.
        conn.execute("DELETE FROM ticket_tally")
        conn.execute(
            "INSERT INTO ticket_tally (category, status, tickets) "
            "SELECT category, status, count(*) FROM ticket GROUP BY category, status"
        )
        counter = f"WHERE name = '{TICKET_COUNTER}'"
        if before.counter is None:
            conn.execute(f"DELETE FROM counter {counter}")
        else:
            conn.execute(f"UPDATE counter SET value = {before.counter} {counter}")
        conn.commit()
    finally:
        conn.close()
    return tickets


# Ingest --------------------------------------------------------------------------------------


@dataclass
class Rates:
    """Messages a second of each round, by database, and the outcomes of the rounds."""

    rates: dict[str, list[float]] = field(default_factory=lambda: {EMPTY: [], FULL: []})
    outcomes: Counter[str] = field(default_factory=Counter)

    def median(self, which: str) -> float:
        return statistics.median(self.rates[which]) if self.rates[which] else 0.0

    def each(self, which: str) -> str:
        return ", ".join(f"{rate:.0f}" for rate in self.rates[which])


def next_number(db: Db) -> int:
    """The number the database gives its next ticket (the generated mail's replies quote
    the numbers their requests get)."""
    conn = connect(db)
    try:
        value = scalar(conn, f"SELECT value FROM counter WHERE name = '{TICKET_COUNTER}'")
    finally:
        conn.close()
    return int(value) + 1 if value is not None else 1000


def measure_ingest(dbs: dict[str, Db], work: Path, messages: int, seed: int, rounds: int) -> Rates:
    """`rounds` rounds empty, full, full, empty, ..., each pair the same mails; the
    big desk put back as it was after. Raw mail and attachments go under `work`, which
    the caller removes with the empty database (whose blobs are files there)."""
    figure = Rates()
    contexts = {}
    before = snapshot(dbs[FULL])
    try:
        for which, db in dbs.items():
            contexts[which] = build_context(ingest_config(db, work / f"ingest-{which}"))
        numbers = {which: next_number(db) for which, db in dbs.items()}
        for which in dbs:  # imports, the parsing process, caches: uncounted
            _, _, new = ingest_round(contexts[which], WARM_UP, seed * 1000, numbers[which])
            numbers[which] += new
        for number, which in enumerate(abba(rounds)):
            pair_seed = seed * 1000 + 1 + number // 2  # rounds 0 and 1 the same mails, ...
            seconds, outcomes, new = ingest_round(
                contexts[which], messages, pair_seed, numbers[which]
            )
            numbers[which] += new
            figure.rates[which].append(messages / seconds)
            figure.outcomes.update(o.status for o in outcomes)
    finally:
        for ctx in contexts.values():
            ctx.store.dispose()
        restore(dbs[FULL], before)
    return figure


# SMTP ----------------------------------------------------------------------------------------


@dataclass
class Smtp:
    """Intake rate and end to end (until every acknowledgement is at the sink), by database."""

    intake: dict[str, list[float]] = field(default_factory=lambda: {EMPTY: [], FULL: []})
    end_to_end: dict[str, list[float]] = field(default_factory=lambda: {EMPTY: [], FULL: []})
    sent: Counter[str] = field(default_factory=Counter)


def _drain_target(db: Db) -> Path | str:
    return db.path if db.kind == "sqlite" else db.dsn


def smtp_round(
    db: Db, work: Path, raws: list[bytes], args: Any, before: Snapshot
) -> tuple[float, float, int]:
    """`mailgate run` on `db` takes the mails by SMTP; (intake msg/s, end to end msg/s, sent)."""
    work.mkdir(parents=True, exist_ok=True)
    port, sink = free_port(), free_port()
    config = mailgate_toml(work, port, database=db.url, sink=sink)
    mailgate = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
    after = (before.ids["intake"], before.ids["outbox"])
    with (
        child([sys.executable, "-c", SINK_SERVER, str(sink)], sink),
        child(mailgate, port, work / "mailgate.log") as server,
    ):
        started = time.perf_counter()
        run = measure(f"mailgate run ({db.kind})", port, raws, args.clients, server.pid)
        done, sent = wait_until_drained(_drain_target(db), started, args.timeout, after)
    return run.rate, run.messages / done, sent


@contextmanager
def empty_database(kind: str, work: Path, server: str) -> Iterator[Db]:
    """A new database at the newest schema (SQLite's in `work`), dropped after."""
    work.mkdir(parents=True, exist_ok=True)
    db = sqlite_db(work / "empty.db") if kind == "sqlite" else postgres_db(server)
    create(db)
    try:
        migrate(db, "head")
        yield db
    finally:
        drop(db)


def measure_smtp(full: Db, work: Path, server: str, args: Any) -> Smtp:
    """`smtp_rounds` rounds empty, full, full, empty, ..., the same mails in each, each
    database put back as it was after each of its rounds."""
    figure = Smtp()
    with empty_database(full.kind, work / "smtp-empty", server) as empty:
        dbs = {EMPTY: empty, FULL: full}
        for number, which in enumerate(abba(args.smtp_rounds)):
            db, where = dbs[which], work / f"smtp{number}"
            before = snapshot(db)
            raws = generate(args.smtp_messages, args.seed, next_number(db))
            try:
                rate, end, sent = smtp_round(db, where, raws, args, before)
            finally:
                restore(db, before)
                shutil.rmtree(where, ignore_errors=True)
            figure.intake[which].append(rate)
            figure.end_to_end[which].append(end)
            figure.sent[which] += sent
    shutil.rmtree(work / "smtp-empty", ignore_errors=True)
    return figure
