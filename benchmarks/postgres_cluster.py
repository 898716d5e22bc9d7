"""PostgreSQL cluster: K `mailgate run` instances on one PostgreSQL database take N generated
mails by SMTP from C clients (spread over the instances) while two IMAP mailboxes on a
throwaway Dovecot, which every instance watches, hold M more. Baseline, in the same run:
the same load on one instance. Prints the SMTP intake rate, the time until every message is
a ticket or article with its acknowledgement sent, the ratios, and how the IMAP mailboxes
were shared (one instance polls each).

Needs a PostgreSQL server where tests find it ($MAILGATE_TEST_PG, else 127.0.0.1:5432 as
postgres with trust) and root for Dovecot."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
from corpus import generate
from servers import child, free_port, imap_block, mailgate_toml
from smtp_intake import SINK_SERVER, measure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' throwaway Dovecot

from tests.dovecot import Dovecot, ImapUser  # noqa: E402

SERVER = os.environ.get("MAILGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def create_database() -> tuple[str, str]:
    name = f"mailgate_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = SERVER.removeprefix("postgresql://")
    return name, f"postgresql+psycopg://{host}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def config(work: Path, index: int, url: str, sink: int, boxes: Sequence[ImapUser]) -> Path:
    mailboxes = "".join(
        imap_block(f"box{n}", b.server.port, b.name, b.password, takeover_interval=5.0)
        for n, b in enumerate(boxes)
    )
    return mailgate_toml(
        work,
        free_port(),
        name=f"instance{index}",
        database=url,
        sink=sink,
        log_level="info",  # the imap_serving lines say which instance serves which mailbox
        extra=mailboxes,
    )


def port_of(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith('listen = "127.0.0.1:'):
            return int(line.split(":")[-1].rstrip('"'))
    raise ValueError(f"no SMTP port in {path}")


def counts(url: str) -> tuple[int, int, int]:
    """(messages with an outcome, mail not yet sent, mail sent)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        done = conn.execute("SELECT count(*) FROM intake WHERE status != 'received'").fetchone()
        unsent = conn.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()
        sent = conn.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()
    return int(done[0]), int(unsent[0]), int(sent[0])  # type: ignore[index]


async def send_spread(ports: Sequence[int], raws: Sequence[bytes], clients: int) -> float:
    """The clients take turns over the instances, as MTAs would over several MX hosts."""
    start = time.perf_counter()
    shares = [raws[i::clients] for i in range(clients)]
    runs = [
        asyncio.to_thread(measure, "instance", ports[i % len(ports)], share, 1)
        for i, share in enumerate(shares)
    ]
    await asyncio.gather(*runs)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Figures:
    instances: int
    intake_seconds: float  # until the last SMTP message had its 250
    finished_seconds: float  # until everything had its outcome and its mail was sent
    sent: int
    serving: dict[int, int]  # instance -> mailboxes it served


def run_instances(
    count: int, by_smtp: Sequence[bytes], by_imap: Sequence[bytes], args: argparse.Namespace
) -> Figures:
    """`count` instances on a fresh database and fresh mailboxes, the whole load once."""
    name, url = create_database()
    server = Dovecot()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="mailgate-cluster-bench-"))
    try:
        boxes = [server.add_user(), server.add_user()]
        for number, raw in enumerate(by_imap):
            boxes[number % 2].append(raw)
        sink = free_port()
        configs = [config(work, i, url, sink, boxes) for i in range(count)]
        upgrade = [sys.executable, "-m", "mailgate", "-c", str(configs[0]), "db", "upgrade"]
        subprocess.run(upgrade, check=True, capture_output=True)
        with ExitStack() as stack:
            stack.enter_context(child([sys.executable, "-c", SINK_SERVER, str(sink)], sink))
            started = time.perf_counter()
            for index, path in enumerate(configs):
                command = [sys.executable, "-m", "mailgate", "-c", str(path), "run"]
                stack.enter_context(child(command, port_of(path), work / f"{index}.log"))
            ports = [port_of(path) for path in configs]
            intake = asyncio.run(send_spread(ports, by_smtp, args.clients))
            total = len(by_smtp) + len(by_imap)
            while time.perf_counter() - started < args.timeout:
                done, unsent, sent = counts(url)
                if done >= total and not unsent:
                    break
                time.sleep(0.5)
            else:
                raise SystemExit(f"{count} instance(s) did not finish in {args.timeout:.0f} s")
            finished = time.perf_counter() - started
        serving = {
            i: (work / f"{i}.log").read_text(errors="replace").count("event=imap_serving")
            for i in range(count)
        }
        return Figures(count, intake, finished, sent, serving)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()
        drop_database(name)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2, help="mailgate instances (2)")
    parser.add_argument("--messages", type=int, default=2000, help="by SMTP (2000)")
    parser.add_argument("--imap-messages", type=int, default=400, help="over 2 mailboxes (400)")
    parser.add_argument("--clients", type=int, default=8, help="SMTP clients (8)")
    parser.add_argument("--timeout", type=float, default=1800, help="drain limit in seconds")
    return parser.parse_args(argv)


def print_figures(runs: Sequence[Figures], smtp: int, total: int) -> None:
    print(f"\n{'setup':<14}{'SMTP msg/s':>12}{'end-to-end s':>14}{'msg/s':>9}{'acks sent':>11}")
    for r in runs:
        print(
            f"{f'{r.instances} instance(s)':<14}{smtp / r.intake_seconds:>12.1f}"
            f"{r.finished_seconds:>14.1f}{total / r.finished_seconds:>9.1f}{r.sent:>11}"
        )
    single, cluster = runs
    print(
        f"ratio {cluster.instances} instances / 1: SMTP intake "
        f"{single.intake_seconds / cluster.intake_seconds:.2f}x, end to end "
        f"{single.finished_seconds / cluster.finished_seconds:.2f}x"
    )
    print(
        "mailboxes served per instance: "
        + ", ".join(f"#{i} {n}" for i, n in cluster.serving.items())
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raws = generate(args.messages + args.imap_messages, seed=3)
    by_smtp, by_imap = raws[: args.messages], raws[args.messages :]
    print("mailgate PostgreSQL cluster benchmark")
    print(
        f"{len(by_smtp)} messages by SMTP from {args.clients} clients, {len(by_imap)} in 2 IMAP "
        f"mailboxes; baseline: the same load on one instance, in the same run"
    )
    runs = [run_instances(n, by_smtp, by_imap, args) for n in (1, args.instances)]
    print_figures(runs, len(by_smtp), len(raws))
    return 0


if __name__ == "__main__":
    sys.exit(main())
