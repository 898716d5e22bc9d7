"""Ingest throughput: stdlib parse baseline, mailgate's parse stage and its full pipeline."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import email
import email.policy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corpus import NEW, REPLY, SUPPORT, Sample, generate_samples
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func
from sqlmodel import select

from mailgate.config import Config, DatabaseConfig, OutboundConfig, PathsConfig, SmtpConfig
from mailgate.flows.pipeline import Outcome
from mailgate.flows.replies import written_text
from mailgate.outbound import outbox
from mailgate.outbound.context import Context
from mailgate.reading.parse import parse
from mailgate.service.app import build_context, build_transport
from mailgate.service.ingest import in_batches, ingest
from mailgate.store.models import Outbox, Ticket

DATABASES = ("bench", "one")  # parse ahead; one process
OWNED = tuple(f"{db}.db{end}" for db in DATABASES for end in ("", "-wal", "-shm", "-journal"))
OWNED_DIRS = ("messages", "data", "sent", "one-data", "one-sent")
ONE_PROCESS = "pipeline, one process"
PARSE_AHEAD = "mailgate pipeline"  # as `mailgate ingest` runs it: parsing ahead


@dataclass(frozen=True)
class Figure:
    """One measured stage."""

    name: str
    messages: int
    nbytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def bench_config(work: Path, prefix: str = "") -> Config:
    """A complete configuration under the work directory: SQLite, file transport. A prefix
    names another desk beside the first (its database and directories)."""
    named = f"{prefix}-" if prefix else ""
    return Config(
        source="(benchmark)",
        database=DatabaseConfig(url=f"sqlite:///{work}/{prefix or 'bench'}.db"),
        paths=PathsConfig(data_dir=str(work / f"{named}data")),
        smtp=SmtpConfig(addresses=[SUPPORT]),
        outbound=OutboundConfig(
            transport="file", directory=str(work / f"{named}sent"), from_=f"Support <{SUPPORT}>"
        ),
    )


@contextmanager
def work_dir(chosen: str | None) -> Iterator[Path]:
    """The given directory, cleared of an earlier run's files; else a temporary one."""
    if chosen is None:
        path = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        (path / name).unlink(missing_ok=True)
    for name in OWNED_DIRS:
        shutil.rmtree(path / name, ignore_errors=True)
    yield path


def write_messages(samples: Sequence[Sample], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, sample in enumerate(samples, 1):
        path = directory / f"{index:05d}.eml"
        path.write_bytes(sample.raw)
        paths.append(path)
    return paths


# Stages -------------------------------------------------------------------------------------


def stdlib_extract(raw: bytes) -> int:
    """What any mail consumer does at least: parse, read the body, read every attachment."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    size = 0
    body = msg.get_body(("plain", "html"))
    if body is not None:
        size += len(body.get_content())
    for part in msg.iter_attachments():
        size += len(part.get_content())
    return size


REPEATS = 3  # the parse stages are timed this often; the median counts


def timed(name: str, raws: Sequence[bytes], step: Callable[[bytes], object]) -> Figure:
    """The median of REPEATS passes: a single pass swings with the machine's mood, and
    every ratio printed divides by the baseline."""
    passes = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for raw in raws:
            step(raw)
        passes.append(time.perf_counter() - start)
    return Figure(name, len(raws), sum(map(len, raws)), statistics.median(passes))


def read_reply(raw: bytes) -> str:
    """What a reply's article keeps: parsed, then its quoted history cut off."""
    return written_text(parse(raw))


def timed_replies(samples: Sequence[Sample]) -> list[Figure]:
    """Reading replies alone, all of them and the HTML-only ones (cut on their markup)."""
    replies = [s.raw for s in samples if s.kind == REPLY]
    html_only = [s.raw for s in samples if s.kind == REPLY and s.html_only]
    return [
        timed("reading replies", replies, read_reply),
        timed("reading HTML-only replies", html_only, read_reply),
    ]


def run_pipeline(
    ctx: Context, raws: Sequence[bytes], tick: Callable[[], None], parse_ahead: bool
) -> list[Outcome]:
    """Store and process in batches, as `mailgate ingest` does with many files."""
    named = {f"{index:05d}.eml": raw for index, raw in enumerate(raws, 1)}
    names = list(named)
    outcomes = []
    for results in ingest(ctx, in_batches(names, named.__getitem__), parse_ahead):
        for result in results:
            assert result.outcome is not None, f"{result.name} was not processed"
            outcomes.append(result.outcome)
            tick()
    return outcomes


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A bar on stderr while the pipeline runs; nothing when stderr is not a terminal."""
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def timed_pipeline(
    ctx: Context, raws: Sequence[bytes], profile: str | None, parse_ahead: bool
) -> tuple[Figure, list[Outcome]]:
    profiler = cProfile.Profile() if profile else None
    name = PARSE_AHEAD if parse_ahead else ONE_PROCESS
    with progress(len(raws), name) as tick:
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        outcomes = run_pipeline(ctx, raws, tick, parse_ahead)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - start
    if profiler and profile:
        profiler.dump_stats(profile)
    return Figure(name, len(raws), sum(map(len, raws)), seconds), outcomes


def timed_delivery(ctx: Context) -> Figure:
    """Send every acknowledgement the pipeline queued (the CLI does this after ingesting)."""
    with ctx.store.session() as session:
        nbytes = session.exec(select(func.sum(func.length(Outbox.raw)))).one()
    start = time.perf_counter()
    counts = asyncio.run(outbox.deliver_due(ctx, build_transport(ctx.config)))
    seconds = time.perf_counter() - start
    return Figure("outbox delivery (acks)", sum(counts.values()), nbytes or 0, seconds)


# Report -------------------------------------------------------------------------------------


def print_header(samples: Sequence[Sample], seed: int, generated: float, work: Path) -> None:
    total = sum(len(s.raw) for s in samples)
    new = sum(s.kind == NEW for s in samples)
    print("mailgate ingest benchmark")
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.platform()}"
    )
    print(
        f"corpus: {len(samples)} messages ({new} new requests, {len(samples) - new} replies), "
        f"{sum(s.html_only for s in samples)} replies HTML only, "
        f"{total / 1e6:.1f} MB, average {total / max(len(samples), 1) / 1024:.1f} KB, "
        f"seed {seed}, generated in {generated:.1f} s"
    )
    print(f"work dir: {work}")


def print_figures(figures: Sequence[Figure]) -> None:
    print()
    print(f"{'stage':<26}{'messages':>10}{'MB':>9}{'seconds':>10}{'messages/s':>12}")
    for f in figures:
        print(
            f"{f.name:<26}{f.messages:>10}{f.nbytes / 1e6:>9.1f}{f.seconds:>10.3f}{f.rate:>12.1f}"
        )
    by_name = {f.name: f for f in figures}
    base = by_name["baseline (stdlib)"].seconds
    if base > 0:
        mailgate = by_name[PARSE_AHEAD].seconds / base
        parse_only = by_name["mailgate parse"].seconds / base
        print(f"time ratios: mailgate/baseline {mailgate:.2f}x, parse/baseline {parse_only:.2f}x")
        rate = by_name["baseline (stdlib)"].rate
        print(
            f"rate ratios: mailgate pipeline {by_name[PARSE_AHEAD].rate / rate:.2f}x the "
            f"baseline's messages/s (in one process {by_name[ONE_PROCESS].rate / rate:.2f}x)"
        )


def print_reading(figures: Sequence[Figure]) -> None:
    """Per message: what reading a reply costs (parse, then the quoted history cut off)."""
    each = [f"{f.seconds / f.messages * 1000:.2f} ms" if f.messages else "-" for f in figures]
    print(f"reading a reply: {each[0]} a message ({each[1]} for one sent as HTML only)")


def expected(sample: Sample, prefix: str) -> str:
    return f"{'ticket' if sample.kind == NEW else 'reply'} {prefix}-{sample.number}"


def verify(
    samples: Sequence[Sample], paths: Sequence[Path], outcomes: Sequence[Outcome], ctx: Context
) -> bool:
    """Print every outcome count, the ticket count and any message that went astray."""
    statuses = Counter(o.status for o in outcomes)
    print("outcomes: " + ", ".join(f"{name} {count}" for name, count in statuses.most_common()))
    with ctx.store.session() as session:
        tickets = session.exec(select(func.count()).select_from(Ticket)).one()
    new = sum(s.kind == NEW for s in samples)
    tickets_ok = tickets == new
    print(f"tickets: {tickets} for {new} new requests: {'ok' if tickets_ok else 'MISMATCH'}")
    prefix = ctx.config.tickets.prefix
    astray = [
        (path, sample, outcome)
        for path, sample, outcome in zip(paths, samples, outcomes, strict=True)
        if outcome.describe() != expected(sample, prefix)
    ]
    print(f"threading: {len(samples) - len(astray)} of {len(samples)} as expected")
    for path, sample, outcome in astray[:20]:
        print(
            f"  {path.name}: expected {expected(sample, prefix)}, got {outcome.describe()!r}"
            f" (from {sample.sender}, subject {sample.subject!r})"
        )
    return len(outcomes) == len(samples) and tickets_ok and not astray


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="how many (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--dir", help="work directory, kept (default: a temporary one)")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the (parse-ahead) pipeline stage to FILE"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every message got its expected outcome, else 1."""
    args = parse_args(argv)
    with work_dir(args.dir) as work:
        cfg = bench_config(work)
        start = time.perf_counter()
        samples = generate_samples(args.messages, args.seed, cfg.tickets.start)
        print_header(samples, args.seed, time.perf_counter() - start, work)
        paths = write_messages(samples, work / "messages")
        raws = [path.read_bytes() for path in paths]
        baseline = timed("baseline (stdlib)", raws, stdlib_extract)
        parse_only = timed("mailgate parse", raws, parse)
        reading = timed_replies(samples)
        single = build_context(bench_config(work, "one"))
        try:
            one_process, alone = timed_pipeline(single, raws, None, parse_ahead=False)
        finally:
            single.store.dispose()
        ctx = build_context(cfg)
        try:
            figure, outcomes = timed_pipeline(ctx, raws, args.profile, parse_ahead=True)
            delivery = timed_delivery(ctx)
            print_figures([baseline, parse_only, *reading, one_process, figure, delivery])
            print_reading(reading)
            ok = verify(samples, paths, outcomes, ctx)
            same = [o.describe() for o in alone] == [o.describe() for o in outcomes]
            print(f"one process: {'the same outcomes' if same else 'OTHER OUTCOMES'}")
        finally:
            ctx.store.dispose()
    return 0 if ok and same else 1


if __name__ == "__main__":
    sys.exit(main())
