"""SMTP intake: C concurrent clients send N generated support mails to `mailgate run` (SQLite)
and, in the same run, to a bare aiosmtpd server that only writes and fsyncs each message.

Prints messages/s and DATA->250 latency (p50, p99) for both and their ratio, then the time
until mailgate has turned the last message into a ticket or article and delivered every
acknowledgement to a local sink relay. Done in rounds (bare, then mailgate on a new database),
and the median of the rounds' ratios printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aiosmtplib import SMTP
from corpus import SUPPORT, generate
from servers import child, free_port, mailgate_toml, tree_cpu_seconds

TARGET = 0.8  # end to end against intake, aimed at

# The baseline: what any SMTP intake must do at least, and nothing more.
BARE_SERVER = textwrap.dedent(
    """
    import asyncio, itertools, os, sys
    from aiosmtpd.controller import Controller

    directory, port = sys.argv[1], int(sys.argv[2])
    counter = itertools.count(1)

    def write(name, data):
        with open(name, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            name = os.path.join(directory, f"{next(counter):06d}.eml")
            await asyncio.to_thread(write, name, envelope.original_content)
            return "250 OK stored"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            data_size_limit=50_000_000, decode_data=False)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    """
)

# A relay that takes mailgate's outgoing mail and drops it.
SINK_SERVER = textwrap.dedent(
    """
    import sys
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    """
)


@dataclass(frozen=True)
class Run:
    name: str
    messages: int
    seconds: float
    latencies: list[float]  # DATA -> 250, seconds
    refused: int
    cpu: float  # CPU seconds the server's processes used meanwhile

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else float("inf")

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the DATA -> 250 latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1] * 1000


async def client(port: int, raws: Sequence[bytes], latencies: list[float]) -> int:
    """One MTA-like connection sending its share of the messages; returns refusals."""
    refused = 0
    smtp = SMTP(hostname="127.0.0.1", port=port, timeout=120)
    await smtp.connect()
    for raw in raws:
        await smtp.mail("sender@customer.example")
        await smtp.rcpt(SUPPORT)
        start = time.perf_counter()
        try:
            await smtp.data(raw)
        except Exception:  # a 4xx/5xx: counted, the benchmark goes on
            refused += 1
            await smtp.rset()
            continue
        latencies.append(time.perf_counter() - start)
    await smtp.quit()
    return refused


async def send_all(
    port: int, raws: Sequence[bytes], clients: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    shares = [raws[i::clients] for i in range(clients)]
    start = time.perf_counter()
    refused = await asyncio.gather(*(client(port, share, latencies) for share in shares))
    return time.perf_counter() - start, latencies, sum(refused)


def measure(
    name: str, port: int, raws: Sequence[bytes], clients: int, server: int | None = None
) -> Run:
    """Send the messages and time them; with the server's process id, its CPU time too."""
    before = tree_cpu_seconds(server) if server else float("nan")
    seconds, latencies, refused = asyncio.run(send_all(port, raws, clients))
    cpu = tree_cpu_seconds(server) - before if server else float("nan")
    return Run(name, len(raws) - refused, seconds, latencies, refused, cpu)


def drained(db: Path | str, after: tuple[int, int] = (0, 0)) -> tuple[int, int, int]:
    """(stored messages without an outcome, outgoing mail not yet sent, mail sent) in the
    SQLite file or the PostgreSQL database (its DSN), counting only the intake and outbox
    rows after the ids in `after` (a desk's history aside)."""
    queries = (
        "SELECT count(*) FROM intake WHERE status = 'received' AND id > {}",
        "SELECT count(*) FROM outbox WHERE status = 'queued' AND id > {}",
        "SELECT count(*) FROM outbox WHERE status = 'sent' AND id > {}",
    )
    floors = (after[0], after[1], after[1])
    statements = [sql.format(int(floor)) for sql, floor in zip(queries, floors, strict=True)]
    if isinstance(db, str):
        with psycopg.connect(db) as pg:
            counts = [pg.execute(sql).fetchone() for sql in statements]  # type: ignore[arg-type]
    else:
        with sqlite3.connect(db, timeout=30) as con:
            counts = [con.execute(sql).fetchone() for sql in statements]
    waiting, queued, sent = (int(row[0]) if row else 0 for row in counts)
    return waiting, queued, sent


def wait_until_drained(
    db: Path | str, started: float, timeout: float, after: tuple[int, int] = (0, 0)
) -> tuple[float, int]:
    """Seconds from the first DATA until every message has its outcome and every queued
    mail went to the sink; and the number sent."""
    while time.perf_counter() - started < timeout:
        waiting, queued, sent = drained(db, after)
        if not waiting and not queued:
            return time.perf_counter() - started, sent
        time.sleep(0.1)
    raise SystemExit(f"not drained after {timeout:.0f} s")


def outcomes(db: Path) -> str:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT status, count(*) FROM intake GROUP BY status").fetchall()
        tickets = con.execute("SELECT count(*) FROM ticket").fetchone()[0]
    return ", ".join(f"{s} {n}" for s, n in rows) + f"; tickets {tickets}"


def print_runs(runs: Sequence[Run]) -> None:
    print(f"\n{'server':<28}{'messages':>9}{'refused':>9}{'seconds':>9}{'msg/s':>9}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'CPU ms':>9}")  # fmt: skip
    for r in runs:
        print(
            f"{r.name:<28}{r.messages:>9}{r.refused:>9}{r.seconds:>9.2f}{r.rate:>9.1f}"
            f"{r.percentile(50):>9.1f}{r.percentile(99):>9.1f}"
            f"{r.cpu * 1000 / max(r.messages, 1):>9.2f}"
        )
    print("CPU ms: the server's CPU time a message while the clients sent (its children too)")


@dataclass(frozen=True)
class Round:
    """One bare run and the mailgate run right after it."""

    bare: Run
    ours: Run
    drained: float  # seconds from mailgate's first DATA until all was done and sent
    sent: int
    cpu: float = float("nan")  # CPU seconds of mailgate's processes over those seconds

    @property
    def throughput(self) -> float:
        return self.ours.rate / self.bare.rate

    @property
    def p99(self) -> float:
        return self.ours.percentile(99) / self.bare.percentile(99)

    @property
    def end_to_end(self) -> float:
        """Messages a second from the first DATA until every ticket's acknowledgement was
        at the sink: how fast tickets follow the stored mail."""
        return self.ours.messages / self.drained if self.drained > 0 else 0.0

    @property
    def follows(self) -> float:
        """End to end against the intake rate of the same round (1.0: processing keeps up)."""
        return self.end_to_end / self.ours.rate if self.ours.rate else 0.0

    @property
    def bound(self) -> float:
        """The end-to-end rate the machine allows at most: mailgate's processes needed
        `cpu / messages` of CPU a message in all (intake, parsing, tickets, sending), so even
        with every core busy all the time no round can be faster than the cores divided by
        that."""
        per_message = self.cpu / self.ours.messages if self.ours.messages else float("nan")
        return (os.cpu_count() or 1) / per_message if per_message > 0 else float("inf")


def print_ratios(rounds: Sequence[Round]) -> None:
    """Each round's ratios, and their medians: the machine's speed drifts between runs a
    minute apart, so a ratio is only taken within a round, and one round's luck (either
    server's) does not make the figure. The headline is end to end: tickets with their
    acknowledgement at the sink against the mail stored in the same round."""
    for number, r in enumerate(rounds, 1):
        print(
            f"round {number}: end to end {r.end_to_end:.1f} msg/s, {r.follows:.2f}x of intake "
            f"({r.ours.rate:.1f} msg/s; all {r.sent} acknowledgements at the sink after "
            f"{r.drained:.1f} s); intake throughput {r.throughput:.2f}x the bare server, "
            f"p99 DATA->250 {r.p99:.2f}x"
        )
        print_bound(r)
    if len(rounds) > 1:
        follows = statistics.median(r.follows for r in rounds)
        end_to_end = statistics.median(r.end_to_end for r in rounds)
        throughput = statistics.median(r.throughput for r in rounds)
        p99 = statistics.median(r.p99 for r in rounds)
        drained = statistics.median(r.drained for r in rounds)
        print(
            f"median of {len(rounds)} rounds: end to end {follows:.2f}x of intake "
            f"({end_to_end:.1f} msg/s, at the sink after {drained:.1f} s); "
            f"throughput {throughput:.2f}x, p99 DATA->250 {p99:.2f}x"
        )


def print_bound(r: Round) -> None:
    """Whether the target lies within what the CPU allows in this round: mailgate's CPU a
    message, while senders sent and in all, and the end-to-end rate all cores would give."""
    processing = (r.cpu - r.ours.cpu) / r.ours.messages * 1000
    print(
        f"  CPU a message: {r.ours.cpu / r.ours.messages * 1000:.2f} ms while senders sent, "
        f"{processing:.2f} ms after (parsing, tickets, sending); all {os.cpu_count()} cores "
        f"busy throughout would give at most {r.bound:.1f} msg/s end to end, "
        f"{r.bound / r.ours.rate:.2f}x of intake ({TARGET}x: "
        f"{'within' if TARGET * r.ours.rate <= r.bound else 'beyond'} what the CPU allows); "
        f"this round reached {r.end_to_end / r.bound:.2f} of that"
    )


def bare_run(work: Path, raws: Sequence[bytes], clients: int) -> Run:
    directory = work / "bare"
    shutil.rmtree(directory, ignore_errors=True)  # the last round's files
    directory.mkdir()
    port = free_port()
    with child([sys.executable, "-c", BARE_SERVER, str(directory), str(port)], port) as server:
        return measure("bare aiosmtpd + fsync", port, raws, clients, server.pid)


def mailgate_round(
    work: Path, raws: Sequence[bytes], clients: int, bare: Run, timeout: float
) -> Round:
    """mailgate on a new database: the same messages, then the wait until every ticket's
    acknowledgement is at the sink."""
    work.mkdir()
    port, sink = free_port(), free_port()
    config = mailgate_toml(work, port, sink=sink)
    mailgate = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
    with (
        child([sys.executable, "-c", SINK_SERVER, str(sink)], sink),
        child(mailgate, port, work / "mailgate.log") as server,
    ):
        started = time.perf_counter()
        cpu = tree_cpu_seconds(server.pid)
        ours = measure("mailgate run (SQLite)", port, raws, clients, server.pid)
        print_runs([bare, ours])  # before the wait, which may run out
        done, sent = wait_until_drained(work / "mailgate.db", started, timeout)
        cpu = tree_cpu_seconds(server.pid) - cpu
    print(f"outcomes: {outcomes(work / 'mailgate.db')}")
    return Round(bare, ours, done, sent, cpu)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="how many (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP clients (8)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="drain limit in seconds")
    parser.add_argument(
        "--rounds", type=int, default=3, help="bare then mailgate, this often (default 3)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raws = generate(args.messages, args.seed)
    total = sum(map(len, raws))
    print("mailgate SMTP intake benchmark")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"corpus: {len(raws)} messages, {total / 1e6:.1f} MB, average "
        f"{total / len(raws) / 1024:.1f} KB; {args.clients} clients"
    )
    work = Path(tempfile.mkdtemp(prefix="mailgate-smtp-bench-"))
    try:
        rounds = []
        for number in range(1, args.rounds + 1):
            bare = bare_run(work, raws, args.clients)
            where = work / f"round{number}"
            rounds.append(mailgate_round(where, raws, args.clients, bare, args.timeout))
        print()
        print_ratios(rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
