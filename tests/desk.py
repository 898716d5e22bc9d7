"""A known desk for the report tests: eight tickets over Berlin days, two organisations, two
agents, articles and time entries; fixtures that build it on the parametrised database and
run the command line against it with the test's clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailgate import cli
from mailgate.config import Config, TicketsConfig
from mailgate.outbound.context import Context
from mailgate.service.app import build_context
from mailgate.store.models import (
    Agent,
    Article,
    Attachment,
    Blob,
    Contact,
    Organisation,
    Ticket,
    TicketAgent,
    TimeEntry,
)
from tests.helpers import Clock, make_config
from tests.test_cli import mailgate

# Friday afternoon; the desk works in Berlin (UTC+1 in November).
NOW = datetime(2026, 11, 6, 12, 0, tzinfo=UTC)
ZONE = "Europe/Berlin"


def at(text: str) -> datetime:
    """A UTC moment from "MM-DD HH:MM" in 2026."""
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


# number, created, priority, category, status, assignee, billable, type, subject,
# first response, resolved, last action by, updated (all times UTC)
DESK: tuple[tuple[Any, ...], ...] = (
    (1000, "11-02 08:00", "A", "billing", "closed", "anna", True, "bug", "Invoice wrong",
     "11-02 09:30", "11-03 08:00", "staff", "11-03 08:00"),
    # 00:30 on Tuesday in Berlin: a Tuesday ticket although it is still Monday in UTC.
    (1001, "11-02 23:30", "B", "shop", "open", "bert", False, "help", "Shop login fails",
     None, None, "customer", "11-02 23:30"),
    (1002, "11-03 10:00", "C", None, "working", None, False, "help", "printer Jam",
     "11-05 09:00", None, "staff", "11-05 09:00"),
    (1003, "11-04 14:00", "A", "billing", "delivered", "anna", True, "bug", "Refund 100%_off",
     "11-04 17:00", "11-05 14:00", "staff", "11-05 14:00"),
    (1004, "10-28 10:00", "B", "shop", "hold", "bert", False, "enhancement", "Old feature wish",
     "10-28 12:00", None, "customer", "10-29 09:00"),
    (1005, "11-05 09:00", "C", "shop", "open", "anna", False, "suggestion", "Printer colour",
     None, None, "customer", "11-05 09:00"),
    # Created on a Friday evening: two business days end on Tuesday 17:00 Berlin time.
    (1006, "10-30 16:00", "C", "hardware", "open", "bert", False, None, "Disk full",
     "11-03 17:00", None, "staff", "11-03 17:00"),
    (1007, "10-30 15:00", "C", "hardware", "closed", None, False, None, "=1+1",
     "11-02 10:00", "11-02 12:00", "staff", "11-02 12:00"),
)  # fmt: skip


def desk_config(tmp_path: Path, db_url: str) -> Config:
    return make_config(tmp_path, db_url, tickets=TicketsConfig(timezone=ZONE))


@pytest.fixture
def desk(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[Context]:
    """The desk on the parametrised database, its clock at NOW."""
    ctx = dataclasses.replace(build_context(desk_config(tmp_path, db_url)), clock=clock)
    build_desk(ctx)
    clock.now = NOW
    yield ctx
    ctx.store.dispose()


def build_desk(ctx: Context) -> None:
    """The tickets of DESK with two organisations, two agents, articles and time entries."""
    created = at("10-01 08:00")
    with ctx.store.session() as s:
        anna = Agent(email="anna@example.com", name="Anna", created_at=created)
        bert = Agent(email="bert@example.com", name="Bert", created_at=created)
        acme = Organisation(name="Acme GmbH", created_at=created)
        beta = Organisation(name="Beta AG", created_at=created)
        s.add_all([anna, bert, acme, beta])
        s.flush()
        alice = Contact(email="alice@acme.example", organisation_id=acme.id, created_at=created)
        bob = Contact(email="bob@beta.example", organisation_id=beta.id, created_at=created)
        s.add_all([alice, bob])
        s.flush()
        agents = {"anna": anna.id, "bert": bert.id, None: None}
        tickets = {}
        for row in DESK:
            number, made, prio, cat, status, who, billable, kind, subject, first, done, by, upd = (
                row
            )
            requester = alice if number <= 1002 else bob
            ticket = Ticket(
                number=number,
                subject=subject,
                status=status,
                priority=prio,
                type=kind,
                category=cat,
                organisation_id=requester.organisation_id,
                requester_id=requester.id,
                assignee_id=agents[who],
                billable=billable,
                source="smtp",
                served_address="support@example.com",
                created_at=at(made),
                updated_at=at(upd),
                last_action_by=by,
                last_action_at=at(upd),
                first_response_at=at(first) if first else None,
                resolved_at=at(done) if done else None,
            )
            s.add(ticket)
            tickets[number] = ticket
        s.flush()
        _history(s, tickets, anna.id or 0, bert.id or 0)


def _history(s: Any, tickets: dict[int, Ticket], anna: int, bert: int) -> None:
    """Articles on 1000 (one with an attachment) and 1003, time on both, bert cc'd on 1000."""
    first, answer = at("11-02 08:00"), at("11-02 09:30")
    s.add(Blob(sha256="ab" * 32, size=5, path="ab/abab"))
    question = Article(
        ticket_id=tickets[1000].id,
        direction="customer",
        from_addr="alice@acme.example",
        to_addrs="support@example.com",
        cc_addrs="carol@acme.example, dave@acme.example",
        subject="Invoice wrong",
        date=first,
        message_id="<q1@acme.example>",
        text="The invoice is wrong.",
        created_at=first,
    )
    reply = Article(
        ticket_id=tickets[1000].id,
        direction="staff",
        from_addr="anna@example.com",
        to_addrs="alice@acme.example",
        subject="Re: [CID-1000] Invoice wrong",
        date=answer,
        message_id="<a1@example.com>",
        text="Corrected.",
        created_at=answer,
    )
    refund = Article(
        ticket_id=tickets[1003].id,
        direction="customer",
        from_addr="bob@beta.example",
        to_addrs="support@example.com",
        subject="Refund 100%_off",
        message_id="<r1@beta.example>",
        note="unverified sender",
        created_at=at("11-04 14:00"),
    )
    s.add_all([question, reply, refund])
    s.flush()
    s.add(Attachment(article_id=question.id, filename="inv.pdf", content_type="application/pdf",
                     size=5, sha256="ab" * 32))  # fmt: skip
    s.add(TicketAgent(ticket_id=tickets[1000].id, agent_id=bert))
    for number, minutes, billable in ((1000, 30, True), (1000, 15, False), (1003, 60, True)):
        s.add(
            TimeEntry(
                ticket_id=tickets[number].id,
                agent_id=anna,
                minutes=minutes,
                billable=billable,
                created_at=at("11-05 10:00"),
            )
        )


@pytest.fixture
def desk_cli(desk: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return cli_runner(desk, tmp_path, monkeypatch)


def cli_runner(desk: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`mailgate …` against the desk's database, reading time from the test's clock."""
    path = tmp_path / "desk.toml"
    path.write_text(
        f'[database]\nurl = "{desk.config.database.url}"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[tickets]\ntimezone = "{ZONE}"\n'
        '[smtp]\naddresses = ["support@example.com"]\n',
        encoding="utf-8",
    )
    real = cli.build_context
    monkeypatch.setattr(
        cli,
        "build_context",
        lambda cfg, **kw: dataclasses.replace(real(cfg, **kw), clock=desk.clock),
    )
    return lambda *args: mailgate(*args, config=path)
