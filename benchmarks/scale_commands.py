"""The commands staff run, timed on the big desk against the recent desk (the same tickets
the commands show, without the years before them).

Timed in this process through the command line itself: click's CliRunner with the
arguments a user types (`mailgate -c CONFIG tickets list ...`), the output rendered as in a
terminal of 200 columns and thrown away, on the desk's clock, after a warm-up run on each
desk. A user waits for Python's start and mailgate's imports besides: the same on both
desks, left out here so that the ratio shows what the data costs."""

from __future__ import annotations

import dataclasses
import gc
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import mailgate.cli
from mailgate.cli import cli

RECENT, FULL = "recent", "full"
OPEN = "open,working,hold,delivered"  # every status but closed: what is still in hand
LATEST = ("--sort", "last-action", "--desc", "--limit", "50")


@dataclass(frozen=True)
class Command:
    label: str  # the arguments as shown, with ORG, AGENT, OPEN, MONTH and DAY standing in
    args: tuple[str, ...]
    under: float | None = None  # seconds the command must stay under on the big desk
    long: bool = False  # seconds a run: two runs on each desk, no warm-up


def desk_commands(customer: str, agent: str, month: str, day: str, out: Path) -> list[Command]:
    """What staff run day to day, each with common filters: queues, a customer's and an
    agent's open tickets, the figures, a month's time, an export of the recent tickets."""
    listing = ("tickets", "list")
    csv_file, xlsx_file = str(out / "export.csv"), str(out / "export.xlsx")
    return [
        Command("tickets list --status open,working", (*listing, "--status", "open,working"), 1),
        Command("tickets list --status delivered", (*listing, "--status", "delivered"), 1),
        Command(
            "tickets list --customer ORG --status OPEN",
            (*listing, "--customer", customer, "--status", OPEN),
            1,
        ),
        Command(
            "tickets list --assignee AGENT --status OPEN",
            (*listing, "--assignee", agent, "--status", OPEN),
            1,
        ),
        Command("tickets list --waiting us", (*listing, "--waiting", "us"), 1),
        Command(
            "tickets list --status open,working --sort last-action --desc --limit 50",
            (*listing, "--status", "open,working", *LATEST),
            1,
        ),
        Command("stats", ("stats",), 1),
        # Every organisation with time in the month: seconds a run on a big desk.
        Command("report time --month MONTH", ("report", "time", "--month", month), long=True),
        Command(
            "report time --customer ORG --month MONTH",
            ("report", "time", "--customer", customer, "--month", month),
        ),
        Command(
            "export --created-from DAY -o x.csv",
            ("export", "--created-from", day, "-o", csv_file),
            long=True,
        ),
        Command(
            "export --created-from DAY -o x.xlsx",
            ("export", "--created-from", day, "-o", xlsx_file),
            long=True,
        ),
    ]


@contextmanager
def desk_clock(now: datetime) -> Iterator[None]:
    """The commands read the time from the desk's clock: a kept desk is the same desk on any
    day (the last seven days of `stats`, the first-response targets of a list)."""
    real = mailgate.cli.build_context

    def at_now(config: Any, **kw: Any) -> Any:
        return dataclasses.replace(real(config, **kw), clock=lambda: now)

    mailgate.cli.build_context = at_now  # type: ignore[assignment]
    try:
        yield
    finally:
        mailgate.cli.build_context = real  # type: ignore[assignment]


def run(config: Path, args: Sequence[str]) -> tuple[float, str]:
    """Seconds the command took, and what it printed."""
    runner = CliRunner()
    gc.collect()  # the garbage of the runs before is not this run's to collect
    start = time.perf_counter()
    result = runner.invoke(cli, ["-c", str(config), *args], standalone_mode=False)
    seconds = time.perf_counter() - start
    if result.exception is not None or result.return_value not in (0, None):
        raise SystemExit(f"mailgate {' '.join(args)} failed: {result.output}{result.exception!r}")
    return seconds, result.output


def what_it_showed(args: Sequence[str], output: str) -> str:
    """What the output holds, to see both desks showed the same: tickets listed or
    exported, tickets in a time report."""
    exported = re.search(r"exported (\d+) tickets(?:, (\d+) articles)?", output)
    if exported:
        articles = f", {exported[2]} articles" if exported[2] else ""
        return f"{exported[1]} tickets{articles}"
    if args[0] == "stats":
        total = re.search(r"^\W*total\W.*?(\d+)\W*$", output, re.M)
        return f"{total[1]} tickets in all" if total else "no total"
    rows = len(set(re.findall(r"CID-\d+", output)))
    return f"{rows} tickets"


@dataclass
class Timing:
    command: Command
    seconds: dict[str, list[float]] = field(default_factory=lambda: {RECENT: [], FULL: []})
    showed: dict[str, str] = field(default_factory=dict)

    def median(self, desk: str) -> float:
        return statistics.median(self.seconds[desk])

    @property
    def ratio(self) -> float:
        return self.median(FULL) / self.median(RECENT)


def _order(runs: int) -> list[str]:
    """Recent, full, full, recent, ...: a drift of the machine weighs on both alike."""
    pattern = [RECENT, FULL, FULL, RECENT]
    return [pattern[i % 4] for i in range(2 * runs)]


def time_commands(
    configs: dict[str, Path],
    commands: Sequence[Command],
    now: datetime,
    repeat: int,
    report: Callable[[Timing], None] = lambda timing: None,
) -> list[Timing]:
    """Each command on each desk: a warm-up run, then `repeat` timed runs (the long ones
    two, without a warm-up), interleaved; `report` is called with each as it is done."""
    timings = []
    with desk_clock(now):
        for command in commands:
            timing = Timing(command)
            if not command.long:
                for config in configs.values():
                    run(config, command.args)
            for desk in _order(2 if command.long else repeat):
                seconds, output = run(configs[desk], command.args)
                timing.seconds[desk].append(seconds)
                timing.showed[desk] = what_it_showed(command.args, output)
            report(timing)
            timings.append(timing)
    return timings
