"""VERP envelope senders and non-standard bounces (Exchange NDRs, qmail) find their ticket."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from mailgate.outbound.context import Context
from mailgate.reading.marks import bounce_address, bounce_outbox_id
from mailgate.reading.mime.report import exchange_failed_recipients, qmail_failed_recipients
from mailgate.reading.parse import parse
from mailgate.reading.screen import failed_recipients, is_bounce
from mailgate.store.models import Contact, Outbox
from tests.helpers import articles, ingest, outbox, tickets
from tests.mails import make_mail

CUSTOMER = "alice@acme.example"


def failing(ctx: Context, address: str) -> bool:
    with ctx.store.session() as session:
        contact = session.exec(select(Contact).where(Contact.email == address)).one()
        return contact.failing


def opened(ctx: Context) -> Outbox:
    """A ticket from a customer, and its acknowledgement's outbox row."""
    assert ingest(ctx, make_mail()).describe() == "ticket CID-1000"
    (row,) = outbox(ctx)
    return row


def qmail_bounce(recipient: str, original_id: str = "unrelated@nowhere.example") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.acme.example\r\n"
        f"To: {recipient}\r\n"
        "Subject: failure notice\r\n"
        "Message-ID: <qmail-1@mx.acme.example>\r\n\r\n"
        "Hi. This is the qmail-send program at mx.acme.example.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{CUSTOMER}>:\r\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        "Return-Path: <support@example.com>\r\n"
        f"Message-ID: <{original_id}>\r\n"
        "Subject: something\r\n\r\n"
        "the text\r\n"
    ).encode()


def exchange_ndr(
    subject: str = "Undeliverable: Printer broken",
    sender: str = "postmaster@acme.example",
    in_reply_to: str = "",
    flag: bool = True,
    to: str = "support@example.com",
) -> bytes:
    lines = [
        f"From: Microsoft Outlook <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        "Message-ID: <ndr-7@acme.example>",
        *([f"In-Reply-To: <{in_reply_to}>"] if in_reply_to else []),
        *(["X-MS-Exchange-Message-Is-Ndr:"] if flag else []),
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Delivery has failed to these recipients or groups:",
        "",
        f"{CUSTOMER} ({CUSTOMER})",
        "The email address you entered couldn't be found.",
        "",
        "Diagnostic information for administrators:",
        "Generating server: mx.acme.example",
        "",
    ]
    return "\r\n".join(lines).encode()


KEY = bytes(range(32))


def test_bounce_address_round_trips() -> None:
    address = bounce_address("support@example.com", 42, KEY)
    assert re.fullmatch(r"support\+bounce-42-[0-9a-f]{16}@example\.com", address)
    assert bounce_outbox_id(f"<{address.upper()}>", KEY) == 42
    assert bounce_outbox_id(address, bytes(32)) is None  # another installation's key
    assert bounce_outbox_id(address.replace("-42-", "-43-"), KEY) is None
    assert bounce_outbox_id("support+bounce-42@example.com", KEY) is None  # unsigned
    assert bounce_outbox_id("support@example.com", KEY) is None
    assert bounce_outbox_id("support+bounce-x@example.com", KEY) is None


def test_outgoing_mail_carries_a_verp_envelope_sender(sqlite_ctx: Context) -> None:
    row = opened(sqlite_ctx)
    assert row.envelope_from.startswith(f"support+bounce-{row.id}-")
    assert bounce_outbox_id(row.envelope_from, sqlite_ctx.secret_key) == row.id


def test_bounce_addresses_are_served(sqlite_ctx: Context) -> None:
    smtp = sqlite_ctx.config.smtp
    assert smtp.serves("support+bounce-7-0123456789abcdef@example.com")
    assert smtp.serves("support+bounce-7@example.com")
    assert not smtp.serves("support+bounce-7@elsewhere.example")
    assert not smtp.serves("other+bounce-7@example.com")


@pytest.mark.parametrize("via", ["envelope", "delivered-to", "to"])
def test_qmail_bounce_to_verp_address_reaches_its_ticket(sqlite_ctx: Context, via: str) -> None:
    row = opened(sqlite_ctx)
    verp = row.envelope_from
    raw = qmail_bounce(verp if via == "to" else "support@example.com")
    if via == "delivered-to":
        raw = f"Delivered-To: {verp}\r\n".encode() + raw
    envelope = (verp,) if via == "envelope" else ()
    outcome = ingest(sqlite_ctx, raw, envelope_to=envelope)
    assert outcome.describe() == "reply CID-1000"
    assert [a.direction for a in articles(sqlite_ctx, 1000)] == ["customer", "system"]
    assert failing(sqlite_ctx, CUSTOMER)
    assert len(outbox(sqlite_ctx)) == 1  # never answered


def test_qmail_bounce_finds_ticket_by_returned_message_id(sqlite_ctx: Context) -> None:
    row = opened(sqlite_ctx)
    outcome = ingest(sqlite_ctx, qmail_bounce("support@example.com", row.message_id))
    assert outcome.describe() == "reply CID-1000"
    assert failing(sqlite_ctx, CUSTOMER)


def test_verp_bounce_without_report_marks_the_rows_recipient(sqlite_ctx: Context) -> None:
    row = opened(sqlite_ctx)
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        f"To: {row.envelope_from}\r\nSubject: Returned mail\r\n"
        "Message-ID: <odd-1@mx.acme.example>\r\n\r\nSomething went wrong.\r\n"
    ).encode()
    assert ingest(sqlite_ctx, raw).describe() == "reply CID-1000"
    assert failing(sqlite_ctx, CUSTOMER)


def test_exchange_ndr_by_header_reaches_ticket(sqlite_ctx: Context) -> None:
    row = opened(sqlite_ctx)
    raw = exchange_ndr(in_reply_to=row.message_id, sender="someone@acme.example")
    assert ingest(sqlite_ctx, raw).describe() == "reply CID-1000"
    assert failing(sqlite_ctx, CUSTOMER)
    assert len(outbox(sqlite_ctx)) == 1


@pytest.mark.parametrize("subject", ["Undeliverable: Printer broken", "Unzustellbar: Drucker"])
def test_exchange_ndr_by_subject_from_postmaster(sqlite_ctx: Context, subject: str) -> None:
    row = opened(sqlite_ctx)
    raw = exchange_ndr(subject=subject, flag=False, to=row.envelope_from)
    assert ingest(sqlite_ctx, raw).describe() == "reply CID-1000"
    assert failing(sqlite_ctx, CUSTOMER)


def test_undeliverable_subject_from_a_person_is_not_a_bounce(sqlite_ctx: Context) -> None:
    raw = exchange_ndr(sender="bob@acme.example", flag=False)
    assert not is_bounce(parse(raw))
    assert ingest(sqlite_ctx, raw).describe() == "ticket CID-1000"
    assert len(tickets(sqlite_ctx)) == 1


def test_unrelated_nonstandard_bounce_is_ignored(sqlite_ctx: Context) -> None:
    outcome = ingest(sqlite_ctx, qmail_bounce("support@example.com"))
    assert (outcome.status, outcome.reason) == ("ignored", "bounce about no ticket of ours")
    assert tickets(sqlite_ctx) == []


def test_failed_recipient_extraction() -> None:
    qmail = parse(qmail_bounce("support@example.com"))
    assert is_bounce(qmail) and failed_recipients(qmail) == (CUSTOMER,)
    assert qmail_failed_recipients("Hello\n<x@y.example>:\n") == []
    inline = "Your message to bob@kunde.example couldn't be delivered.\n"
    assert exchange_failed_recipients(inline) == ["bob@kunde.example"]
    german = (
        "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:\n\n"
        "Bob (bob@kunde.example)\ncarl@kunde.example\n\nDiagnose: x@admin.example\n"
    )
    assert exchange_failed_recipients(german) == ["bob@kunde.example", "carl@kunde.example"]
