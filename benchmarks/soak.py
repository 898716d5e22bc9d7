"""Soak: `mailgate run` for --minutes (30) under a steady mixed load, watched for leaks.

The load, at modest rates: generated support mail by SMTP from a few clients (new requests
and customers' replies that carry their ticket's tag), mail APPENDed to the IMAP inbox the
daemon watches (a throwaway Dovecot), an agent's answers by mail with commands (status,
time, a hold that comes due, delivery, close), and now and then a customer asking for their
list. The scheduled jobs run often: reminders and first-response escalations every
--reminder-seconds (the daemon's interval of 5 minutes, set lower for the run: there is no
setting for it), the daily digest (sent once: one a day) and retention every few minutes.

Every --interval seconds: RSS, PSS and open descriptors of each process of the daemon's
tree. Every minute: p50/p99 of the end-to-end latency of that minute's new requests by SMTP
(the DATA's 250 to the acknowledgement's arrival at the sink relay) and by IMAP. At the
end, the verdict: each process's memory and descriptors after the warm-up (the first five
minutes; under 10 minutes the first sixth of the run) against their value then, every mail
stored with its outcome and every request answered, and the daemon's log.

Exits 1 when the daemon died, a mail was lost or had an outcome it should not have
(quarantined, ignored), or the log shows a traceback; a missed memory or descriptor
target is printed, not an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from servers import child, free_port, imap_block, mailgate_toml
from soak_ledger import IMAP, SMTP, Ledger
from soak_load import Pace, follow, imap_client, smtp_client
from soak_mail import AGENT, AGENT_NAME, Agent, ListAsker, Stream
from sqlalchemy import Engine, create_engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' throwaway Dovecot

from imap_backlog import inbox_size  # noqa: E402
from soak_verdict import Outcomes, check_log, outcomes, print_mail, print_trends, trends  # noqa: E402
from soak_watch import GROWTH_LIMIT, Watch, clock  # noqa: E402

from tests.dovecot import Dovecot, ImapUser  # noqa: E402

# `mailgate run`, with the reminder jobs' interval set first.
DAEMON = (
    "import sys; from mailgate.service import jobs; "
    "jobs.REMINDER_INTERVAL = jobs.Every(float(sys.argv.pop(1))); "
    "from mailgate.cli import main; main()"
)
# The desk: the agent's plain mail counts (no MTA here to vouch for it), new tickets go to
# the agent, first responses are due within minutes (escalations come due in the run),
# the digest and retention run every few minutes (the digest goes out at its first run
# only: a day has one, and later runs find the day claimed).
DESK = f"""\
[security]
agent_verification = "none"
[staff]
default_agent = "{AGENT}"
[sla]
first_response = {{ A = "1m", B = "2m", C = "3m" }}
[digest]
schedule = "*/5 * * * *"
[retention]
raw_mail_days = 30
schedule = "*/3 * * * *"
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--minutes", type=float, default=30, help="how long the load runs (30)")
    add("--interval", type=float, default=60, help="seconds between samples (60)")
    add("--rate", type=float, default=5, help="customer mails a second by SMTP (5)")
    add("--clients", type=int, default=3, help="SMTP clients sharing that rate (3)")
    add("--imap-rate", type=float, default=1, help="mails a second APPENDed by IMAP (1)")
    add("--agent-every", type=float, default=4, help="seconds between agent mails (4)")
    add("--list-every", type=float, default=30, help="seconds between list requests (30)")
    add("--reminder-seconds", type=float, default=60, help="reminder job interval (60)")
    add("--database", default="", help="URL of an empty database (else SQLite)")
    add("--seed", type=int, default=1, help="corpus seed (1)")
    add("--drain", type=float, default=180, help="seconds to wait for the last answers (180)")
    add("--keep", metavar="DIR", help="work here and keep the files (logs, sink, database)")
    return parser.parse_args(argv)


def warm_up(minutes: float) -> tuple[float, str]:
    """Seconds of warm-up before the trend counts, and how the output names it."""
    if minutes >= 10:
        return 300.0, "minute 5"
    return minutes * 10, f"{clock(minutes * 10)} (the first sixth of a run under 10 minutes)"


@contextmanager
def workspace(keep: str | None) -> Iterator[Path]:
    if keep:
        path = Path(keep).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        print(f"files kept in {path}")
        return
    path = Path(tempfile.mkdtemp(prefix="mailgate-soak-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def setup(work: Path, args: argparse.Namespace, user: ImapUser) -> tuple[Path, int, int]:
    """The configuration (SMTP port, sink port) and the agent."""
    port, sink = free_port(), free_port()
    box = imap_block("support", user.server.port, user.name, user.password, poll_interval=5.0)
    config = mailgate_toml(
        work, port, database=args.database or None, sink=sink, log_level="info", extra=DESK + box
    )
    mailgate = [sys.executable, "-m", "mailgate", "-c", str(config)]
    subprocess.run([*mailgate, "agents", "add", AGENT, "--name", AGENT_NAME], check=True)
    return config, port, sink


async def load(
    args: argparse.Namespace, port: int, user: ImapUser, watch: Watch, pool: Executor
) -> Pace:
    ledger = watch.ledger
    smtp, imap = (
        Stream(ledger, channel, itertools.count(args.seed * 1000 + offset, 2), pool)
        for offset, channel in ((0, SMTP), (1, IMAP))
    )
    smtp.prime()
    imap.prime()
    start = time.monotonic()
    pace = Pace(until=start + args.minutes * 60)
    period = args.clients / args.rate
    clients = [
        smtp_client(port, smtp.next, start + n / args.rate, period, pace, ledger)
        for n in range(args.clients)
    ]
    await asyncio.gather(
        *clients,
        smtp_client(port, Agent(ledger).next, start + 1, args.agent_every, pace, ledger),
        smtp_client(port, ListAsker(ledger).next, start + 2, args.list_every, pace, ledger),
        imap_client(user, imap, start + 0.5, 1 / args.imap_rate, pace, ledger),
        follow(ledger, pace),
        watch.run(start, pace.until, pace.stop),
    )
    return pace


def drain(watch: Watch, engine: Engine, user: ImapUser, seconds: float) -> Outcomes:
    """Wait until every mail sent is stored with its outcome, every mail queued is at the
    sink and every request answered (or `seconds` have passed, or the daemon died)."""
    deadline = time.monotonic() + seconds
    while True:
        # In this order: mail the inbox no longer holds is stored, and stored mail that has
        # its outcome has had its answers queued, by the time each next figure is read.
        fetched = not inbox_size(user)
        found = outcomes(engine)
        watch.ledger.follow()
        done = fetched and not found.waiting and not watch.ledger.unanswered()
        if done or time.monotonic() > deadline or watch.daemon.poll() is not None:
            return found
        time.sleep(0.5)


def soak(args: argparse.Namespace, work: Path, user: ImapUser, pool: Executor) -> int:
    config, port, sink = setup(work, args, user)
    engine = create_engine(args.database or f"sqlite:///{work}/mailgate.db")
    sink_log = work / "sink.jsonl"
    relay = [
        sys.executable,
        str(Path(__file__).with_name("soak_sink.py")),
        str(sink),
        str(sink_log),
    ]
    run = [sys.executable, "-c", DAEMON, str(args.reminder_seconds), "-c", str(config), "run"]
    with child(relay, sink), child(run, port, work / "mailgate.log") as daemon:
        watch = Watch(daemon, Ledger(sink_log), args.interval)
        pace = asyncio.run(load(args, port, user, watch, pool))
        drained_from = time.monotonic()
        found = drain(watch, engine, user, args.drain)
        print(f"drained {time.monotonic() - drained_from:.1f} s after the load ended")
        watch.print_minutes(through=math.ceil(args.minutes))
        died = daemon.poll() is not None
    engine.dispose()
    warm, named = warm_up(args.minutes)
    print(f"\nverdict (warm-up until {named}; growth allowed {GROWTH_LIMIT:.0%})")
    memory = print_trends(trends(watch.samples, warm))
    print(f"memory and descriptors: {'met' if memory else 'NOT MET'}")
    for error in pace.errors:
        print(f"refused: {error}")
    kept, unexpected = print_mail(found, watch.ledger)
    log = check_log(work / "mailgate.log")
    print(f"daemon log: {log.tracebacks} tracebacks, {log.errors} lines at level error")
    for line in log.examples:
        print(f"  {line}")
    print(
        f"daemon: {'DIED during the run' if died else 'alive throughout'}; "
        f"exit {daemon.returncode} after SIGTERM"
    )
    failed = died or not kept or unexpected or log.tracebacks
    print(f"result: {'FAILED' if failed else 'nothing lost, nothing unexpected, no traceback'}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print("mailgate soak")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"load for {args.minutes:g} min: SMTP {args.rate:g} msg/s from {args.clients} clients, "
        f"IMAP {args.imap_rate:g} msg/s, an agent's mail every {args.agent_every:g} s, a list "
        f"request every {args.list_every:g} s; reminders every {args.reminder_seconds:g} s; "
        f"samples every {args.interval:g} s; database {args.database or 'SQLite'}"
    )
    server = Dovecot()
    server.start()
    try:
        spawn = multiprocessing.get_context("spawn")
        with workspace(args.keep) as work, ProcessPoolExecutor(1, mp_context=spawn) as pool:
            return soak(args, work, server.add_user(), pool)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
