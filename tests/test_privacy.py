"""Customers kept apart: people who share a mail provider, or the "unassigned" pool, never see
each other's tickets, lists or mails; a domain is claimed only when the operator says so."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import text
from sqlmodel import select

from mailgate.config import CustomersConfig
from mailgate.outbound.context import Context
from mailgate.store.models import Contact, Organisation, OrganisationDomain, Participant, Ticket
from tests.helpers import articles, ingest, outbox, parsed, tickets
from tests.mails import make_mail
from tests.test_migrations import store_at


def text_of(msg: Message) -> str:
    return msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def sheet_cells(msg: Message) -> list[str]:
    """Every cell of the .xlsx the mail carries ([] without one)."""
    for part in msg.iter_attachments():  # type: ignore[attr-defined]
        if (part.get_filename() or "").endswith(".xlsx"):
            book = openpyxl.load_workbook(io.BytesIO(part.get_content()))
            return [str(c.value) for row in book.active.iter_rows() for c in row if c.value]
    return []


def mails_to(ctx: Context, address: str) -> list[Message]:
    return [parsed(o.raw) for o in outbox(ctx) if address in o.to_addrs.split(", ")]


def close(ctx: Context, number: int) -> None:
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        ticket.status = "closed"
        session.add(ticket)


def with_policy(ctx: Context, **changes: object) -> Context:
    policy = dataclasses.replace(ctx.config.customers, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, customers=policy))


def test_two_people_at_one_provider_are_strangers(ctx: Context) -> None:
    """posteo.de is no company: its second sender sees nothing of the first one's ticket."""
    ingest(ctx, make_mail(sender="Paula <paula@posteo.de>", subject="Rechnung falsch"))
    close(ctx, 1000)
    listed = ingest(ctx, make_mail(sender="Fremder <fremder@posteo.de>", subject="list"))
    assert listed.status == "ignored" and len(tickets(ctx)) == 1
    (answer,) = mails_to(ctx, "fremder@posteo.de")
    assert "Rechnung falsch" not in text_of(answer) and "CID-1000" not in text_of(answer)
    assert sheet_cells(answer) == []
    before = len(mails_to(ctx, "paula@posteo.de"))
    raw = make_mail(sender="fremder@posteo.de", subject="Re: [CID-1000] Rechnung falsch")
    assert ingest(ctx, raw).describe() == "reply CID-1000"
    last = articles(ctx, 1000)[-1]
    assert (last.direction, last.note) == ("internal", "unverified sender: not part of this ticket")
    (ticket,) = tickets(ctx)
    assert ticket.status == "closed"
    assert len(mails_to(ctx, "paula@posteo.de")) == before, "Paula is told nothing"
    assert len(mails_to(ctx, "fremder@posteo.de")) == 1


def test_a_new_sender_gets_an_organisation_of_their_own_and_no_domain_claim(
    ctx: Context,
) -> None:
    ingest(ctx, make_mail(sender="alice@acme.example"))
    ingest(ctx, make_mail(sender="bob@acme.example", subject="Scanner"))
    first, second = tickets(ctx)
    assert first.organisation_id != second.organisation_id
    raw = make_mail(sender="bob@acme.example", subject="AW: [CID-1000] Printer broken")
    ingest(ctx, raw)
    assert articles(ctx, 1000)[-1].note == "unverified sender: not part of this ticket"


def test_senders_in_the_unassigned_pool_are_strangers(ctx: Context) -> None:
    pooled = with_policy(ctx, unknown_sender="unassigned")
    ingest(pooled, make_mail(sender="anna@one.example", subject="Anna's problem"))
    ingest(pooled, make_mail(sender="ben@two.example", subject="Ben's problem"))
    first, second = tickets(ctx)
    assert first.organisation_id == second.organisation_id  # both in "Unassigned"
    ingest(pooled, make_mail(sender="ben@two.example", subject="Meine Tickets"))
    (_ack, answer) = mails_to(ctx, "ben@two.example")
    assert "CID-1001" in text_of(answer) and "CID-1000" not in text_of(answer)
    assert "CID-1000" not in sheet_cells(answer) and "Anna's problem" not in sheet_cells(answer)
    ingest(pooled, make_mail(sender="ben@two.example", subject="Re: [CID-1000] Anna's problem"))
    assert articles(ctx, 1000)[-1].note == "unverified sender: not part of this ticket"
    cc = make_mail(
        sender="anna@one.example",
        subject="Re: [CID-1000] Anna's problem",
        headers={"Cc": "ben@two.example"},
    )
    ingest(pooled, cc)
    with ctx.store.session() as session:
        assert session.exec(select(Participant)).all() == [], "a stranger in CC takes no part"


def test_a_list_from_someone_without_tickets_is_a_short_answer(ctx: Context) -> None:
    outcome = ingest(ctx, make_mail(sender="nobody@firm.example", subject="status"))
    assert (outcome.status, outcome.reason) == ("ignored", "answered: no open tickets")
    assert tickets(ctx) == []
    with ctx.store.session() as session:
        assert session.exec(select(Contact)).all() == [], "no contact made for a question"
    (answer,) = mails_to(ctx, "nobody@firm.example")
    assert answer["Subject"] == "No open requests"
    assert "nobody@firm.example" in text_of(answer)
    assert sheet_cells(answer) == [] and answer.get_body(("html",)) is not None
    german = {"Content-Language": "de"}
    ingest(ctx, make_mail(sender="kunde@firm.example", subject="Drucker", headers=german))
    close(ctx, 1000)
    ingest(ctx, make_mail(sender="kunde@firm.example", subject="Meine Tickets"))
    german = mails_to(ctx, "kunde@firm.example")[-1]
    assert german["Subject"] == "Keine offenen Anfragen"


def test_a_public_domain_list_is_complete_and_config_adds_to_it() -> None:
    from mailgate.desk.freemail import is_public_domain

    for domain in ("posteo.de", "gmx.de", "web.de", "t-online.de", "GMAIL.com", "mailbox.org"):
        assert is_public_domain(domain, CustomersConfig().public_domains), domain
    assert not is_public_domain("acme.example", [])
    assert is_public_domain("acme.example", ["acme.example"])


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0012_drops_the_claims_mailgate_made_and_makes_provider_groups_pools(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = store_at(db, tmp_path, request, "0011")
    orgs = [(1, "posteo.de"), (2, "acme.example"), (3, "Beta GmbH"), (4, "Unassigned")]
    claims = [("posteo.de", 1), ("acme.example", 2), ("beta.example", 3)]
    with store.engine.begin() as conn:
        for row_id, name in orgs:
            conn.execute(
                text(
                    "INSERT INTO organisation (id, name, support_minutes, created_at)"
                    " VALUES (:id, :name, 0, :now)"
                ),
                {"id": row_id, "name": name, "now": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        for domain, org_id in claims:
            conn.execute(
                text("INSERT INTO organisationdomain (domain, organisation_id) VALUES (:d, :o)"),
                {"d": domain, "o": org_id},
            )
    store.upgrade()
    with store.session() as session:
        kinds = {o.name: o.kind for o in session.exec(select(Organisation))}
        kept = [(c.domain, c.organisation_id) for c in session.exec(select(OrganisationDomain))]
    assert kinds == {
        "posteo.de": "pool",
        "acme.example": "company",
        "Beta GmbH": "company",
        "Unassigned": "pool",
    }
    assert kept == [("beta.example", 3)]
    store.dispose()


def test_a_pool_members_mail_names_no_organisation(ctx: Context) -> None:
    pooled = with_policy(ctx, unknown_sender="unassigned")
    ingest(pooled, make_mail(sender="ben@two.example", subject="Ben's problem"))
    ingest(pooled, make_mail(sender="ben@two.example", subject="list"))
    ack, answer = mails_to(ctx, "ben@two.example")
    assert "Unassigned" not in text_of(ack) and "Unassigned" not in text_of(answer)
    assert answer["Subject"] == "Open tickets of ben@two.example (2026-11-02)"


def test_a_list_request_from_a_failing_address_proves_it_and_is_answered(ctx: Context) -> None:
    ingest(ctx, make_mail(sender="gone@firm.example", subject="Drucker"))
    with ctx.store.session() as session:
        contact = session.exec(select(Contact)).one()
        contact.failing = True
        session.add(contact)
    outcome = ingest(ctx, make_mail(sender="gone@firm.example", subject="list"))
    assert outcome.reason == "answered with the ticket list"
    assert [o.template for o in outbox(ctx)] == ["acknowledgement", "ticket_list"]
    with ctx.store.session() as session:
        assert not session.exec(select(Contact)).one().failing
