"""The daily digest: each agent's sections, the desk view, once a day, as the relay receives it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from mailgate.config import ConfigError, DigestConfig, StaffConfig, TicketsConfig, parse_config
from mailgate.flows import digest
from mailgate.outbound.context import Context
from mailgate.outbound.outbox import deliver_due
from mailgate.outbound.transports import SmtpTransport
from mailgate.store.models import Ticket
from tests.conftest import Clock
from tests.daemon_harness import Sink, relay
from tests.helpers import claim_domain, outbox
from tests.test_reminders import (
    TEAM,
    add_agent,
    assign,
    configured,
    hold,
    mark,
    move,
    new_ticket,
    queued,
    ticket_of,
)

__all__ = ["relay"]  # a fixture, used by name

DIGEST_DAY = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)  # a Thursday; tickets opened Monday 09:00


def answered(ctx: Context, *numbers: int) -> None:
    """A first answer went out an hour after each ticket came in."""
    with ctx.store.session() as session:
        for number in numbers:
            ticket: Ticket = ticket_of(session, number)
            ticket.first_response_at = ticket.created_at + timedelta(hours=1)
            session.add(ticket)


def desk(ctx: Context, clock: Clock) -> dict[str, int]:
    """A known desk: which ticket is which, by name."""
    claim_domain(ctx, "acme.example", "acme.example")
    bob = add_agent(ctx, "bob@example.com")
    eva = add_agent(ctx, "eva@example.com", "de")
    quiet = add_agent(ctx, "quiet@example.com", notify=False)
    add_agent(ctx, "idle@example.com")
    names = ["hold_due", "delivered", "unanswered", "working", "hold_later", "shared"]
    names += ["unassigned", "closed"]
    t = {name: new_ticket(ctx, subject=name.replace("_", " ").capitalize()) for name in names}
    answered(ctx, *(n for name, n in t.items() if name != "unanswered"))
    for name in ("hold_due", "delivered", "unanswered", "working", "hold_later", "closed"):
        assign(ctx, t[name], bob)
    assign(ctx, t["shared"], eva, bob, quiet)
    with ctx.store.session() as session:
        ticket_of(session, t["unanswered"]).priority = "A"
    hold(ctx, t["hold_due"], datetime(2026, 11, 4, tzinfo=UTC))
    hold(ctx, t["hold_later"], datetime(2026, 11, 20, tzinfo=UTC))
    move(ctx, t["delivered"], "working", "delivered")
    move(ctx, t["working"], "working")
    move(ctx, t["closed"], "closed")
    clock.now = DIGEST_DAY
    return t


def sections(text: str) -> dict[str, list[str]]:
    """Section title -> the ticket ids listed under it, as a reader of the mail sees them."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        title = re.fullmatch(r"(\S.*) \((\d+)\)", line)
        if title:
            current = title.group(1)
            found[current] = []
        elif ticket := re.match(r"  (CID-\d+)  ", line):
            found[current].append(ticket.group(1))
    return found


def deliver_to(ctx: Context, port: int) -> None:
    transport = SmtpTransport("127.0.0.1", port, timeout=5.0, local_hostname="mailgate.test")
    asyncio.run(deliver_due(ctx, transport))


def plain(sink: Sink, address: str) -> tuple[str, str]:
    (received,) = sink.to(address)
    body = received.message.get_body(("plain",))
    assert body is not None
    return str(received.message["Subject"]), body.get_content().replace("\r\n", "\n")


def test_each_agent_and_the_team_receive_their_digest(
    ctx: Context, clock: Clock, relay: tuple[Sink, int]
) -> None:
    t = desk(ctx, clock)
    # The team address only now: the notifications of the new tickets would go there too.
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    cid = {name: f"CID-{number}" for name, number in t.items()}
    before = mark(ctx)

    assert digest.send_digests(ctx) == 3
    assert queued(ctx, before) == [
        ("digest", "bob@example.com"),
        ("digest", "eva@example.com"),
        ("digest", TEAM),
    ]  # not the agent without notifications, not the one with nothing open
    sink, port = relay
    deliver_to(ctx, port)

    subject, text = plain(sink, "bob@example.com")
    assert subject == "Digest 2026-11-05: 5 open, 1 SLA breach"
    assert sections(text) == {
        "On hold, resubmission date reached": [cid["hold_due"]],
        "Waiting for the customer's confirmation": [cid["delivered"]],
        "First response overdue": [cid["unanswered"]],
        "Other open tickets": [cid["working"], cid["shared"]],
    }
    assert (
        f"  {cid['unanswered']}  Unanswered\n"
        "      acme.example (Alice Kunde) | priority A | open | "
        "last action: customer, 2026-11-02 09:00 | age 2 d\n"
    ) in text
    assert f"  {cid['hold_due']}  Hold due\n" in text
    assert "hold until 2026-11-04" in text

    subject, text = plain(sink, "eva@example.com")
    assert subject == "Übersicht 05.11.2026: 1 offen, 0 Fristverletzungen"
    assert sections(text) == {"Weitere offene Tickets": [cid["shared"]]}

    subject, text = plain(sink, TEAM)
    assert subject == "Digest 2026-11-05: 7 open, 1 SLA breach"
    assert sections(text) == {
        "Unassigned tickets": [cid["unassigned"]],
        "First response overdue": [cid["unanswered"]],
        "On hold, resubmission date reached": [cid["hold_due"]],
    }
    assert "Tickets by status: open 3, working 1, hold 2, delivered 1\n" in text
    assert not sink.to("quiet@example.com") and not sink.to("idle@example.com")


@pytest.mark.parametrize(
    ("language", "counts", "in_html"),
    [
        (
            "de",
            "Tickets nach Status: offen 3, in Bearbeitung 1, zurückgestellt 2, erledigt 1\n",
            "in Bearbeitung <strong>1</strong>",
        ),
        (
            "fr",
            "Tickets par statut : ouvert 3, en cours 1, en attente 2, résolu 1\n",
            "en cours <strong>1</strong>",
        ),
    ],
    ids=["de", "fr"],
)
def test_the_team_digest_names_the_statuses_in_its_language(
    ctx: Context, clock: Clock, relay: tuple[Sink, int], language: str, counts: str, in_html: str
) -> None:
    """A German desk's team read "open 3, working 1" among German words."""
    desk(ctx, clock)
    tickets = dataclasses.replace(ctx.config.tickets, default_language=language)
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM), tickets=tickets)
    digest.send_digests(ctx)
    sink, port = relay
    deliver_to(ctx, port)

    _subject, text = plain(sink, TEAM)
    assert counts in text
    (received,) = sink.to(TEAM)
    html = received.message.get_body(("html",))
    assert html is not None
    assert in_html in html.get_content()


def test_digest_is_sent_once_a_day(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    desk(ctx, clock)
    before = mark(ctx)
    assert digest.send_digests(ctx) == 3
    clock.advance(hours=10)
    assert digest.send_digests(ctx) == 0  # a rerun, or a second instance, later that day
    assert len(queued(ctx, before)) == 3
    clock.advance(hours=14)
    assert digest.send_digests(ctx) == 3  # the next day


def test_the_day_is_the_desks_day(ctx: Context, clock: Clock) -> None:
    ctx = configured(
        ctx,
        staff=StaffConfig(team_address=TEAM),
        tickets=TicketsConfig(timezone="Europe/Berlin"),
    )
    clock.now = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)  # already 3 November in Berlin
    assert digest.send_digests(ctx) == 1
    clock.now = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)  # 23:00 in Berlin: still the 3rd
    assert digest.send_digests(ctx) == 0
    clock.now = datetime(2026, 11, 3, 23, 5, tzinfo=UTC)
    assert digest.send_digests(ctx) == 1
    subjects = [r.subject for r in outbox(ctx) if r.template == "digest"]
    assert subjects == [
        "Digest 2026-11-03: 0 open, 0 SLA breaches",
        "Digest 2026-11-04: 0 open, 0 SLA breaches",
    ]


def test_two_instances_at_once_send_one_digest(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    desk(ctx, clock)
    start = threading.Barrier(2)
    counts: list[int] = []

    def instance() -> None:
        start.wait()
        counts.append(digest.send_digests(ctx))

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(counts) == [0, 3]
    assert len([r for r in outbox(ctx) if r.template == "digest"]) == 3


def test_nobody_to_tell_sends_nothing(ctx: Context, clock: Clock) -> None:
    add_agent(ctx, "bob@example.com")
    new_ticket(ctx)  # unassigned, and no team address
    before = mark(ctx)
    assert digest.send_digests(ctx) == 0
    assert queued(ctx, before) == []
    with ctx.store.session() as session:
        from mailgate.store.models import Counter

        claimed = session.exec(select(Counter).where(Counter.name == "digest")).one()
    assert claimed.value == 20261102  # the day counts as done all the same


def test_bad_digest_schedule_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^mailgate\.toml: digest\.schedule: 'bad'"):
        parse_config('[digest]\nschedule = "bad"\n', "mailgate.toml")


def test_empty_digest_schedule_is_allowed() -> None:
    cfg = parse_config('[digest]\nschedule = ""\n', "mailgate.toml")
    assert cfg.digest == DigestConfig(schedule="")
