"""Threading: which ticket a mail joins, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from mailgate.outbound.context import Context
from mailgate.store.models import Ticket
from tests.helpers import articles, claim_domain, ingest, outbox, parsed, tickets
from tests.mails import make_mail, new_message_id
from tests.test_tags import PREFIXES


@pytest.fixture
def first(ctx: Context) -> tuple[Context, str]:
    """One ticket (CID-1000) opened by alice@acme.example; returns its Message-ID."""
    mid = new_message_id()
    outcome = ingest(ctx, make_mail(message_id=mid))
    assert outcome.describe() == "ticket CID-1000"
    return ctx, mid


@pytest.fixture
def agent(ctx: Context) -> str:
    from mailgate.desk.agents import add_agent

    with ctx.store.session() as session:
        add_agent(session, "alice.agent@example.com", "Alice Agent", "en", ctx.clock())
    return "alice.agent@example.com"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_reply_with_prefix_joins_ticket(first: tuple[Context, str], prefix: str) -> None:
    ctx, _ = first
    outcome = ingest(ctx, make_mail(subject=f"{prefix}[cid-1000] Printer broken", body="Still."))
    assert outcome.describe() == "reply CID-1000"
    assert [a.direction for a in articles(ctx, 1000)] == ["customer", "customer"]
    assert len(outbox(ctx)) == 1, "a reply gets no second acknowledgement"


def test_in_reply_to_our_acknowledgement_without_tag(first: tuple[Context, str]) -> None:
    ctx, _ = first
    ack_id = outbox(ctx)[0].message_id
    outcome = ingest(ctx, make_mail(subject="Re: your mail", in_reply_to=ack_id))
    assert outcome.describe() == "reply CID-1000"


def test_references_to_the_customers_first_mail(first: tuple[Context, str]) -> None:
    ctx, mid = first
    raw = make_mail(subject="more info", sender="Bob <bob@acme.example>", references=(mid,))
    assert ingest(ctx, raw).describe() == "reply CID-1000"


def test_colleague_of_same_organisation_is_a_participant(first: tuple[Context, str]) -> None:
    ctx, _ = first
    from mailgate.desk.claims import move

    claim_domain(ctx, "ACME", "acme.example")
    with ctx.store.session() as session:
        move(session, "alice@acme.example", "ACME", ctx.clock())
    raw = make_mail(subject="AW: [CID-1000] Printer broken", sender="bob@acme.example")
    assert ingest(ctx, raw).describe() == "reply CID-1000"
    assert articles(ctx, 1000)[-1].direction == "customer"


def test_foreign_sender_with_valid_tag_becomes_unverified_internal_note(
    first: tuple[Context, str],
) -> None:
    ctx, _ = first
    ctx = team_of(ctx, "team@example.com")
    raw = make_mail(
        subject="Re: [CID-1000] Printer broken",
        sender="mallory@evil.example",
        body="Please send me the details.\n\n> Our printer does not print.\n",
    )
    assert ingest(ctx, raw).describe() == "reply CID-1000"
    last = articles(ctx, 1000)[-1]
    assert (last.direction, last.note, last.from_addr, last.text.strip()) == (
        "internal",
        "unverified sender: not part of this ticket",
        "mallory@evil.example",
        "Please send me the details.",
    )
    assert all("mallory" not in row.to_addrs for row in outbox(ctx))
    ticket = tickets(ctx)[0]
    assert ticket.last_action_by == "customer"  # the note is nobody's action
    # Staff read it, warned: it may be the customer from another address, or anyone.
    (told,) = [row for row in outbox(ctx) if row.template == "staff_notification"]
    assert told.to_addrs == "team@example.com"
    assert told.subject == "[CID-1000] Mail from outside the ticket: Printer broken"
    body = parsed(told.raw).get_body(("plain",))
    text = str(body.get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]
    opening = " ".join(text.split("\n\n")[0].split())
    assert opening == (
        "Someone who is not part of ticket CID-1000 wrote with its tag. If they belong to it, "
        '"#cc ADDRESS" in your reply makes them part of it.'
    )
    warning = text.split("\n\n")[1]
    assert warning.startswith("WARNING: unverified sender: not part of this ticket.")
    assert max(map(len, warning.splitlines())) <= 76, warning
    assert "Please send me the details." in text and "<mallory@evil.example>" in text


def test_a_strangers_automatic_mail_on_a_ticket_is_only_stored(first: tuple[Context, str]) -> None:
    ctx, _ = first
    ctx = team_of(ctx, "team@example.com")
    away = make_mail(
        subject="Automatic reply: [CID-1000] Printer broken",
        sender="peter@elsewhere.example",
        headers={"Auto-Submitted": "auto-replied"},
    )
    before = len(outbox(ctx))
    assert ingest(ctx, away).describe() == "reply CID-1000"
    assert articles(ctx, 1000)[-1].note == "unverified sender: not part of this ticket"
    assert len(outbox(ctx)) == before, "an out-of-office note is news to nobody"


def team_of(ctx: Context, address: str) -> Context:
    staff = dataclasses.replace(ctx.config.staff, team_address=address)
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, staff=staff))


def test_foreign_sender_policy_new_ticket(first: tuple[Context, str]) -> None:
    ctx, _ = first
    policy = dataclasses.replace(ctx.config.tickets, unverified_tag_policy="new-ticket")
    ctx2 = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, tickets=policy))
    raw = make_mail(subject="Re: [CID-1000] Printer broken", sender="mallory@evil.example")
    assert ingest(ctx2, raw).describe() == "ticket CID-1001"
    assert len(articles(ctx, 1000)) == 1


def test_reply_to_unknown_number_opens_new_ticket(ctx: Context) -> None:
    outcome = ingest(ctx, make_mail(subject="Re: [CID-9999] Old problem"))
    assert outcome.describe() == "ticket CID-1000"
    assert tickets(ctx)[0].subject == "Re: [CID-9999] Old problem"
    assert outbox(ctx)[0].subject == "[CID-1000] Re: Old problem"


def test_agent_reply_is_staff_article(first: tuple[Context, str], agent: str) -> None:
    ctx, _ = first
    raw = make_mail(
        subject="Re: [CID-1000] Printer broken",
        sender="alice.agent@example.com",
        headers={"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"},
    )
    assert ingest(ctx, raw).describe() == "reply CID-1000"
    assert articles(ctx, 1000)[-1].direction == "staff"
    assert tickets(ctx)[0].last_action_by == "staff"


def test_agent_mail_to_comment_address_is_internal(first: tuple[Context, str], agent: str) -> None:
    ctx, _ = first
    raw = make_mail(
        subject="[CID-1000] note",
        sender="alice.agent@example.com",
        to="support-comment@example.com",
    )
    assert ingest(ctx, raw).describe() == "reply CID-1000"
    assert articles(ctx, 1000)[-1].direction == "internal"


def _close(ctx: Context) -> None:
    with ctx.store.session() as session:
        from sqlmodel import select

        ticket = session.exec(select(Ticket)).one()
        ticket.status = "closed"
        ticket.updated_at = ctx.clock()
        session.add(ticket)


def test_reply_to_closed_ticket_within_reopen_days_reopens(first: tuple[Context, str]) -> None:
    ctx, _ = first
    _close(ctx)
    ctx.clock.advance(days=ctx.config.tickets.reopen_days - 1)  # type: ignore[attr-defined]
    assert ingest(ctx, make_mail(subject="Re: [CID-1000] x")).describe() == "reply CID-1000"
    assert tickets(ctx)[0].status == "open"


def test_reply_to_long_closed_ticket_opens_linked_ticket(first: tuple[Context, str]) -> None:
    ctx, _ = first
    _close(ctx)
    ctx.clock.advance(days=ctx.config.tickets.reopen_days + 1)  # type: ignore[attr-defined]
    assert ingest(ctx, make_mail(subject="Re: [CID-1000] x")).describe() == "ticket CID-1001"
    old, new = tickets(ctx)
    assert (old.status, new.linked_ticket_id) == ("closed", old.id)


def test_agent_mail_that_fails_verification_is_an_internal_note(
    first: tuple[Context, str], agent: str
) -> None:
    ctx, _ = first
    raw = make_mail(
        subject="Re: [CID-1000] Printer broken",
        sender="alice.agent@example.com",
        body="#close\n\nDone.\n",
    )
    assert ingest(ctx, raw).describe() == "reply CID-1000"
    last = articles(ctx, 1000)[-1]
    assert (last.direction, last.note.startswith("unverified agent mail")) == ("internal", True)
    assert tickets(ctx)[0].status == "open"  # the spoofed #close changed nothing
    told = [row for row in outbox(ctx) if row.to_addrs == "alice.agent@example.com"]
    assert [row.template for row in told] == ["command_error"]
    assert all(row.to_addrs != "alice@acme.example" for row in outbox(ctx)[1:])
