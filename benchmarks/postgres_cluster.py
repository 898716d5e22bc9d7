"""PostgreSQL cluster: K `mailgate run` instances on one PostgreSQL database take N generated
mails by SMTP from C clients (spread over the instances) while two IMAP mailboxes on a
throwaway Dovecot, which every instance watches, hold M more. Prints the SMTP intake rate,
the time until every message is a ticket or article with its acknowledgement sent, and how
the IMAP mailboxes were shared (one instance polls each).

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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2, help="mailgate instances (2)")
    parser.add_argument("--messages", type=int, default=2000, help="by SMTP (2000)")
    parser.add_argument("--imap-messages", type=int, default=400, help="over 2 mailboxes (400)")
    parser.add_argument("--clients", type=int, default=8, help="SMTP clients (8)")
    parser.add_argument("--timeout", type=float, default=1800, help="drain limit in seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raws = generate(args.messages + args.imap_messages, seed=3)
    by_smtp, by_imap = raws[: args.messages], raws[args.messages :]
    print("mailgate PostgreSQL cluster benchmark")
    print(
        f"{args.instances} instances, {len(by_smtp)} messages by SMTP from {args.clients} "
        f"clients, {len(by_imap)} in 2 IMAP mailboxes"
    )
    name, url = create_database()
    server = Dovecot()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="mailgate-cluster-bench-"))
    try:
        boxes = [server.add_user(), server.add_user()]
        for number, raw in enumerate(by_imap):
            boxes[number % 2].append(raw)
        sink = free_port()
        configs = [config(work, i, url, sink, boxes) for i in range(args.instances)]
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
            total = len(raws)
            while time.perf_counter() - started < args.timeout:
                done, unsent, sent = counts(url)
                if done >= total and not unsent:
                    break
                time.sleep(0.5)
            finished = time.perf_counter() - started
        serving = {
            i: (work / f"{i}.log").read_text(errors="replace").count("event=imap_serving")
            for i in range(args.instances)
        }
        print(f"\nSMTP intake: {len(by_smtp) / intake:.1f} messages/s ({intake:.1f} s)")
        print(
            f"all {total} messages with an outcome and {sent} acknowledgements sent after "
            f"{finished:.1f} s: {total / finished:.1f} messages/s end to end"
        )
        print(
            "mailboxes served per instance: " + ", ".join(f"#{i} {n}" for i, n in serving.items())
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()
        drop_database(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
