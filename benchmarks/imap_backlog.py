"""IMAP backlog: N generated support mails APPENDed to a throwaway Dovecot, then `mailgate run`
started on SQLite: time until every message is a ticket or an article and has been moved out
of the inbox. Baseline, in the same run: a bare imapclient loop that fetches the same
messages in batches (what any IMAP consumer must do at least); and, to show what reading the
mail costs, the same loop parsing each message with the standard library as it goes."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from corpus import generate
from ingest import stdlib_extract
from servers import child, free_port, imap_block, mailgate_toml, tree_cpu_seconds

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' throwaway Dovecot

from tests.dovecot import Dovecot, ImapUser  # noqa: E402

BATCH = 50
TARGET = 0.8  # tickets a second against the loop that parses, aimed at


def append_all(user: ImapUser, raws: Sequence[bytes]) -> float:
    start = time.perf_counter()
    with user.client() as client:
        for raw in raws:
            client.append("INBOX", raw)
    return time.perf_counter() - start


def bare_fetch(user: ImapUser, step: Callable[[bytes], object] | None = None) -> tuple[int, float]:
    """Select, search, fetch every message's bytes in batches (and `step` each): no storing,
    no moving."""
    start = time.perf_counter()
    fetched = 0
    with user.client() as client:
        client.select_folder("INBOX", readonly=True)
        uids = sorted(client.search("ALL"))
        for first in range(0, len(uids), BATCH):
            batch = client.fetch(uids[first : first + BATCH], ["BODY.PEEK[]"])
            for data in batch.values():
                if b"BODY[]" in data:
                    fetched += 1
                    if step is not None:
                        step(data[b"BODY[]"])
    return fetched, time.perf_counter() - start


def finished(db: Path) -> int:
    """Stored messages with their outcome."""
    try:
        with sqlite3.connect(db, timeout=30) as con:
            (done,) = con.execute(
                "SELECT count(*) FROM intake WHERE status != 'received'"
            ).fetchone()
        return int(done)
    except sqlite3.OperationalError:
        return 0  # not created yet


def inbox_size(user: ImapUser) -> int:
    with user.client() as client:
        return int(client.select_folder("INBOX", readonly=True)[b"EXISTS"])


@dataclass(frozen=True)
class Run:
    moved: float  # seconds until the inbox was empty: every message stored and moved
    done: float  # ... and every message a ticket or an article as well
    cpu: float  # CPU seconds of mailgate's processes meanwhile (the daemon and its children)


def run_mailgate(work: Path, user: ImapUser, total: int, timeout: float, workers: int) -> Run:
    port = free_port()
    box = imap_block("support", user.server.port, user.name, user.password)
    path = mailgate_toml(work, port, extra=f"[processing]\nworkers = {workers}\n{box}")
    start = time.perf_counter()
    moved: float | None = None
    with child([sys.executable, "-m", "mailgate", "-c", str(path), "run"], port) as daemon:
        cpu = tree_cpu_seconds(daemon.pid)
        while time.perf_counter() - start < timeout:
            if moved is None and inbox_size(user) == 0:
                moved = time.perf_counter() - start
            if moved is not None and finished(work / "mailgate.db") >= total:
                done = time.perf_counter() - start
                return Run(moved, done, tree_cpu_seconds(daemon.pid) - cpu)
            time.sleep(0.2)
    raise SystemExit(f"mailgate did not finish the backlog in {timeout:.0f} s")


def print_bound(run: Run, messages: int, reading_rate: float, reading_cpu: float) -> None:
    """What the machine allows: mailgate's processes together need `run.cpu / messages` of
    CPU a message, so with every core busy all the time no run can be faster than the
    cores divided by that. The target (TARGET x the loop that parses) is within reach
    only under that bound; the loop itself runs on one core."""
    cores = os.cpu_count() or 1
    per_message = run.cpu / messages
    bound = cores / per_message if per_message else float("inf")
    wanted = TARGET * reading_rate
    print(
        f"CPU a message: mailgate {per_message * 1000:.2f} ms (all its processes), the loop "
        f"that parses {reading_cpu / messages * 1000:.2f} ms (its own process)"
    )
    print(
        f"with {cores} cores busy all the time mailgate could make at most {bound:.0f} "
        f"tickets/s ({bound / reading_rate:.2f}x the loop that parses); {TARGET}x would need "
        f"{wanted:.0f}/s: {'within' if wanted <= bound else 'beyond'} what the CPU allows; "
        f"measured {messages / run.done:.0f}/s, {messages / run.done / bound:.2f} of the bound"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000, help="backlog size (10000)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds mailgate may take")
    parser.add_argument("--workers", type=int, default=1, help="[processing] workers (1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raws = generate(args.messages, args.seed)
    total = sum(map(len, raws))
    print("mailgate IMAP backlog benchmark")
    print(f"machine: {os.cpu_count()} CPUs")
    print(f"backlog: {len(raws)} messages, {total / 1e6:.1f} MB")
    server = Dovecot()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="mailgate-imap-bench-"))
    try:
        user = server.add_user()
        appended = append_all(user, raws)
        print(f"APPEND to Dovecot: {appended:.1f} s")
        fetched, bare = bare_fetch(user)
        cpu = time.process_time()
        parsed, reading = bare_fetch(user, stdlib_extract)
        reading_cpu = time.process_time() - cpu
        run = run_mailgate(work, user, len(raws), args.timeout, args.workers)
        bare_rate, reading_rate = fetched / bare, parsed / reading
        print(f"\n{'consumer':<34}{'messages':>9}{'seconds':>9}{'msg/s':>9}{'ratio':>8}{'read':>8}")
        print(f"{'bare imapclient fetch loop':<34}{fetched:>9}{bare:>9.1f}{bare_rate:>9.1f}")
        print(
            f"{'fetch loop + stdlib parse':<34}{parsed:>9}{reading:>9.1f}{reading_rate:>9.1f}"
            f"{reading_rate / bare_rate:>7.2f}x"
        )
        for name, seconds in (
            ("mailgate run: stored, moved", run.moved),
            ("... and tickets", run.done),
        ):
            rate = len(raws) / seconds
            print(
                f"{name:<34}{len(raws):>9}{seconds:>9.1f}{rate:>9.1f}{rate / bare_rate:>7.2f}x"
                f"{rate / reading_rate:>7.2f}x"
            )
        print("ratio: against the bare fetch loop; read: against the loop that parses as well")
        print_bound(run, len(raws), reading_rate, reading_cpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
