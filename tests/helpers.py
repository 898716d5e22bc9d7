"""Small helpers the tests share: run a message through the pipeline, read back results."""

from __future__ import annotations

import dataclasses
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import TypeVar

import pytest
from sqlmodel import col, select

from mailgate.config import (
    Config,
    DatabaseConfig,
    OutboundConfig,
    PathsConfig,
    SmtpConfig,
)
from mailgate.flows.pipeline import Outcome, process
from mailgate.outbound.context import Context
from mailgate.store.models import Article, Outbox, Ticket
from mailgate.store.spool import accept


def ingest(
    ctx: Context, raw: bytes, source: str = "smtp", envelope_to: tuple[str, ...] = ()
) -> Outcome:
    accepted = accept(ctx.store, raw, source, ctx.clock(), "", envelope_to)
    return process(ctx, accepted.intake_id)


def claim_domain(ctx: Context, organisation: str, domain: str) -> None:
    """The operator says every sender from `domain` belongs to the company `organisation`."""
    from mailgate.desk.claims import claim

    with ctx.store.session() as session:
        claim(session, organisation, domain, ctx.config.customers, ctx.clock(), force=False)


def tickets(ctx: Context) -> list[Ticket]:
    with ctx.store.session() as session:
        return list(session.exec(select(Ticket).order_by(col(Ticket.number))))


def articles(ctx: Context, number: int) -> list[Article]:
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        query = select(Article).where(Article.ticket_id == ticket.id).order_by(col(Article.id))
        return list(session.exec(query))


def outbox(ctx: Context) -> list[Outbox]:
    with ctx.store.session() as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))))


def parsed(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=default)


T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """The condition's first truthy value; fails the test when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def sqlite_locked(path: Path) -> Iterator[Callable[[], None]]:
    """Another process's write lock on the database file, as a long backup would hold.
    Yields a function that lets go early."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn.close  # closing rolls the open transaction back
    finally:
        conn.close()


class Clock:
    """A clock the test sets; every stage reads time through it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_config(tmp_path: Path, db_url: str | None = None, **sections: object) -> Config:
    """A complete configuration under tmp_path; keyword sections replace whole sections."""
    cfg = Config(
        source="(test)",
        database=DatabaseConfig(url=db_url or f"sqlite:///{tmp_path}/mailgate.db"),
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        smtp=SmtpConfig(
            listen="127.0.0.1:0",
            addresses=["support@example.com"],
            comment_address="support-comment@example.com",
        ),
        outbound=OutboundConfig(
            transport="file",
            directory=str(tmp_path / "sent"),
            from_="Support <support@example.com>",
        ),
    )
    return dataclasses.replace(cfg, **sections)  # type: ignore[arg-type]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux, from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # The command name in parentheses may hold spaces: the fields after it are fixed.
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found
