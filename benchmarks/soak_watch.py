"""The soak's watch on the daemon: each process of its tree as /proc shows it, with its
memory (RSS, and PSS from smaps_rollup: a page shared by n processes counts 1/n in each)
and its open descriptors over time; the end-to-end latency of each minute's requests; and
the trend of each process against its value once the run has warmed up."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from soak_ledger import IMAP, LIST, SMTP, Ledger, Request

from tests.helpers import children

MB = 1024 * 1024
GROWTH_LIMIT = 0.10  # memory may grow this much after the warm-up
FD_SLACK = 8  # descriptors that come and go with the load (sessions, relay, IMAP, database)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load began
    role: str
    pid: int
    rss: int  # bytes
    pss: int
    fds: int


def role_of(pid: int) -> str:
    """What a process of the tree is: its title where mailgate set one (`mailgate-worker`),
    else what its command line says (multiprocessing's fork server, resource tracker)."""
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if comm.startswith("mailgate-"):
        return comm.removeprefix("mailgate-")
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    for marker, name in (("forkserver", "fork-server"), ("resource_tracker", "resource-tracker")):
        if marker in cmdline:
            return name
    return comm


def tree(root: int) -> dict[str, int]:
    """The daemon and its descendants, by role (a second of a role gets `-2`)."""
    found, queue = {"daemon": root}, [root]
    while queue:
        for pid in sorted(children(queue.pop(0))):
            try:
                role = base = role_of(pid)
            except OSError:  # ended meanwhile
                continue
            number = 2
            while role in found:
                role, number = f"{base}-{number}", number + 1
            found[role] = pid
            queue.append(pid)
    return found


def measure(pid: int) -> tuple[int, int, int] | None:
    """(RSS, PSS, open descriptors) of a process; None once it is gone."""
    try:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                fields[key] = int(value.split()[0]) * 1024
        return fields["Rss"], fields["Pss"], len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, KeyError):
        return None


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank; NaN of nothing."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5))) - 1]


class Watch:
    """Samples the tree every `interval` seconds and prints each minute's latencies a minute
    late, when the answers to that minute's requests have come."""

    def __init__(self, daemon: Popen[bytes], ledger: Ledger, interval: float) -> None:
        self.daemon, self.ledger, self.interval = daemon, ledger, interval
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.wall = time.time()  # the same moment on the clock the requests are timed by
        self.minutes_printed = 0

    def sample(self) -> None:
        at = time.monotonic() - self.started
        for role, pid in tree(self.daemon.pid).items():
            figures = measure(pid)
            if figures is None:
                continue
            sample = Sample(at, role, pid, *figures)
            self.samples.append(sample)
            print(
                f"sample {clock(at):>6}  {role:<18} pid {pid:>7}  RSS {sample.rss / MB:7.1f} MB"
                f"  PSS {sample.pss / MB:7.1f} MB  fds {sample.fds:>4}"
            )

    async def run(self, start: float, until: float, stop: asyncio.Event) -> None:
        """From the load's `start` until its end (`until`; both monotonic), or until the daemon
        dies (then `stop` is set)."""
        self.started, self.wall = start, time.time() - (time.monotonic() - start)
        next_sample = start
        while True:
            now = time.monotonic()
            if self.daemon.poll() is not None:
                ended = clock(now - self.started)
                print(f"the daemon ended at {ended}: exit {self.daemon.returncode}")
                stop.set()
                return
            if now >= next_sample or now >= until:
                self.sample()
                next_sample += self.interval
            self.print_minutes(through=(now - self.started) / 60 - 1)
            if now >= until:
                return
            await asyncio.sleep(max(0.0, min(next_sample, until, now + 1) - time.monotonic()))

    def print_minutes(self, through: float) -> None:
        """Each minute not printed yet that ended at `through` (minutes since the start)."""
        while self.minutes_printed + 1 <= through:
            self.minutes_printed += 1
            print(self.minute_line(self.minutes_printed))

    def minute_line(self, minute: int) -> str:
        begin = self.wall + 60 * (minute - 1)
        sent = [r for r in self.ledger.requests.values() if begin <= r.sent_at < begin + 60]
        smtp = _figures([r for r in sent if r.kind == SMTP], 1000, "ms")
        imap = _figures([r for r in sent if r.kind == IMAP], 1, "s")
        lists = [r for r in sent if r.kind == LIST]
        answered = sum(r.answered_at is not None for r in lists)
        return f"minute {minute:>3}  smtp {smtp}  |  imap {imap}  |  list {len(lists)}/{answered}"


def _figures(requests: Sequence[Request], scale: float, unit: str) -> str:
    """`sent N answered M p50 X p99 Y` of the requests' acknowledgements."""
    latencies = [r.latency * scale for r in requests if r.latency is not None]
    digits = 0 if unit == "ms" else 1
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return (
        f"sent {len(requests):>4} answered {len(latencies):>4}"
        f"  p50 {p50:7.{digits}f} {unit}  p99 {p99:7.{digits}f} {unit}"
    )
