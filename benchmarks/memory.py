"""Peak memory of `mailgate run` while it takes one message with a large attachment, by SMTP
and by IMAP (a throwaway Dovecot), until the message is a ticket.

Prints the resident memory when idle and the peak (VmHWM) after the message, of the daemon
(which takes the mail in) and of its worker processes (which parse it and write the ticket),
each against the budget of 4x the message size plus 100 MB; and the sum of all peaks, which
is more than was ever resident at once (the peaks come at different times, and the worker
shares its code pages with the fork server it came from). Then all processes together: the
highest sum of their proportional memory (PSS: a page shared by n processes counts 1/n in
each), sampled every 20 ms while the message is taken in and processed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

from aiosmtplib import SMTP

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' throwaway Dovecot

from servers import child, free_port, imap_block, mailgate_toml  # noqa: E402

from tests.dovecot import Dovecot  # noqa: E402
from tests.helpers import children  # noqa: E402

SUPPORT = "support@example.com"
MB = 1024 * 1024


def big_message(attachment_mb: float, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    msg = EmailMessage()
    msg["From"] = "Pat Customer <pat@customer.example>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Logs of last night's outage"
    msg["Message-ID"] = f"<big-{seed}@customer.example>"
    msg.set_content("Hello,\n\nthe full logs are attached.\n\nPat\n")
    data = rng.randbytes(int(attachment_mb * MB))
    msg.add_attachment(data, "application", "octet-stream", filename="logs.tar.gz")
    return msg.as_bytes()


def rss(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of a process in bytes, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def family(pid: int) -> dict[str, int]:
    """The daemon and its descendants by role and pid: the fork server and the resource
    tracker (helper0, helper1), and the fork server's children by the name ps shows for
    them (worker, parser)."""
    roles = {"daemon": pid}
    for n, server in enumerate(children(pid)):
        roles[f"helper{n}"] = server
        for k, process in enumerate(children(server)):
            name = Path(f"/proc/{process}/comm").read_text().strip().removeprefix("mailgate-")
            roles[name if name not in roles else f"{name}{k}"] = process
    return roles


def pss(pid: int) -> int:
    """Proportional memory of a process in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextmanager
def together(pid: int, every: float = 0.02) -> Iterator[list[int]]:
    """The highest PSS sum of the daemon and its descendants, sampled in a thread until the
    block ends: yields a list that then holds it."""
    highest = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            highest[0] = max(highest[0], sum(pss(p) for p in family(pid).values()))

    sampler = threading.Thread(target=sample, name="pss-sampler")
    sampler.start()
    try:
        yield highest
    finally:
        done.set()
        sampler.join()


@contextmanager
def daemon(cfg: Path, port: int) -> Iterator[int]:
    with child([sys.executable, "-m", "mailgate", "-c", str(cfg), "run"], port) as proc:
        time.sleep(1.0)  # let start-up settle before the idle figure
        yield proc.pid


def wait_for_ticket(db: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db, timeout=30) as con:
                (tickets,) = con.execute("SELECT count(*) FROM ticket").fetchone()
            if tickets:
                return
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.2)
    raise SystemExit("the message did not become a ticket")


async def send(port: int, raw: bytes) -> None:
    smtp = SMTP(hostname="127.0.0.1", port=port, timeout=300)
    await smtp.connect()
    await smtp.sendmail("pat@customer.example", [SUPPORT], raw)
    await smtp.quit()


def idle_family(pid: int) -> dict[str, tuple[int, int]]:
    """Each process's resident memory before the message (the workers are up by then)."""
    deadline = time.monotonic() + 15
    while not any(role.startswith("worker") for role in family(pid)):
        if time.monotonic() > deadline:
            break  # `[processing] workers = 0`: the daemon does it all
        time.sleep(0.1)
    return {role: rss(p) for role, p in family(pid).items()}


def report(path: str, size: int, idle: dict[str, tuple[int, int]], pid: int, at_once: int) -> None:
    budget = 4 * size + 100 * MB
    peaks = {role: rss(p)[1] for role, p in family(pid).items()}
    for role, peak in peaks.items():
        before = idle.get(role, (0, 0))[0]
        print(
            f"{path:<6}{role:<9}{size / MB:>8.1f}{before / MB:>9.1f}{peak / MB:>9.1f}"
            f"{(peak - before) / MB:>11.1f}{budget / MB:>9.1f}{peak / budget:>10.2f}"
        )
    total = sum(peaks.values())
    print(f"{path:<6}{'sum':<9}{'':>8}{'':>9}{total / MB:>9.1f}{'':>11}{budget / MB:>9.1f}"
          f"{total / budget:>10.2f}")  # fmt: skip
    print(f"{path:<6}{'all, PSS':<9}{'':>8}{'':>9}{at_once / MB:>9.1f}{'':>11}{budget / MB:>9.1f}"
          f"{at_once / budget:>10.2f}")  # fmt: skip


def by_smtp(work: Path, raw: bytes) -> None:
    port = free_port()
    with daemon(mailgate_toml(work, port), port) as pid:
        idle = idle_family(pid)
        with together(pid) as at_once:
            asyncio.run(send(port, raw))
            wait_for_ticket(work / "mailgate.db")
        report("smtp", len(raw), idle, pid, at_once[0])


def by_imap(work: Path, raw: bytes) -> None:
    server = Dovecot()
    server.start()
    try:
        user = server.add_user()
        user.append(raw)
        port = free_port()
        imap = imap_block("support", server.port, user.name, user.password)
        with daemon(mailgate_toml(work, port, extra=imap), port) as pid:
            with together(pid) as at_once:
                idle = idle_family(pid)  # may already be fetching: the mailbox is read at start
                wait_for_ticket(work / "mailgate.db")
            report("imap", len(raw), idle, pid, at_once[0])
    finally:
        server.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attachment-mb", type=float, default=25, help="attachment size (25)")
    parser.add_argument("--skip-imap", action="store_true", help="SMTP only (no Dovecot)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raw = big_message(args.attachment_mb)
    print("mailgate memory benchmark")
    print(f"message: {len(raw) / MB:.1f} MB with a {args.attachment_mb:g} MB attachment\n")
    print(f"{'path':<6}{'process':<9}{'msg MB':>8}{'idle MB':>9}{'peak MB':>9}{'peak-idle':>11}"
          f"{'budget':>9}{'of budget':>10}")  # fmt: skip
    for run in (by_smtp,) if args.skip_imap else (by_smtp, by_imap):
        work = Path(tempfile.mkdtemp(prefix="mailgate-mem-bench-"))
        try:
            run(work, raw)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0 and "--skip-imap" not in sys.argv:
        print("the IMAP run starts Dovecot, which needs root; use --skip-imap", file=sys.stderr)
    sys.exit(main())
