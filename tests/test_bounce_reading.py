"""Bounces however they come: a broken report never opens a ticket, a text bounce in German
or from Exim marks the recipient failing as an RFC 3464 report does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.mailroom import Mailroom, answering
from tests.mails import make_mail

BOUNCES = FIXTURES / "bounces"
CUSTOMER = "alice@acme.example"


def failing_events(room: Mailroom, cid: str) -> list[str]:
    return [e["detail"] for e in room.show(cid)["events"] if e["action"] == "address_failing"]


@pytest.mark.parametrize("name", ["report-boundary-cut.eml", "report-truncated.eml"])
def test_a_broken_report_never_opens_a_ticket(room: Mailroom, name: str) -> None:
    line = room.ingest((BOUNCES / name).read_bytes())
    assert line == "ignored: bounce about no ticket of ours"
    assert room.json("tickets", "list") == []
    assert room.new_mail() == []


def test_a_broken_report_about_our_mail_marks_its_recipient(room: Mailroom) -> None:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    raw = (BOUNCES / "report-boundary-cut.eml").read_bytes()
    raw = raw.replace(b"Subject: Undelivered Mail", b"Subject: [CID-1000] Undelivered Mail")
    # What is left of it still quotes the Message-ID of the mail it reports on.
    raw += f"\nMessage-ID: {ack['Message-ID']}\n".encode()
    assert room.ingest(raw) == "reply CID-1000"
    (detail,) = failing_events(room, "CID-1000")
    assert detail.startswith(f"{CUSTOMER}: ")


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.acme.example", "postmaster@acme.example"])
def test_a_plain_failure_notice_from_a_mail_system_opens_no_ticket(
    room: Mailroom, sender: str
) -> None:
    raw = make_mail(
        subject="Delivery Status Notification (Failure)",
        sender=sender,
        body="Delivery to the following recipient failed permanently:\n\n  x@y.example\n",
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert room.ingest(raw) == "ignored: bounce about no ticket of ours"
    assert room.json("tickets", "list") == []


def test_a_german_text_bounce_marks_only_the_tickets_recipient(room: Mailroom) -> None:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    other = make_mail(subject="Login", sender="Bob <bob@beta.example>")
    assert room.ingest(other) == "ticket CID-1001"
    room.new_mail()
    raw = answering((BOUNCES / "german-text-unzustellbar.eml").read_bytes(), ack)
    assert room.ingest(raw) == "reply CID-1000"
    assert room.new_mail() == []  # a bounce is never answered
    (detail,) = failing_events(room, "CID-1000")
    assert detail.startswith(f"{CUSTOMER}: ")
    assert "konnte nicht zugestellt werden" in detail
    # bob@beta.example, named in the diagnostics, got no mail of this ticket: not failing.
    assert failing_events(room, "CID-1001") == []
    answer = make_mail(
        subject="Re: [CID-1001] Login", body="#deliver\n\nDone.", sender="anna@example.com"
    )
    assert room.ingest(answer) == "reply CID-1001"
    assert [str(m["To"]) for m in room.new_mail()] == ["bob@beta.example"] * 2


def test_an_exim_bounce_finds_its_ticket_by_the_returned_copy(room: Mailroom) -> None:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    raw = (BOUNCES / "exim-text-failed.eml").read_bytes()
    raw = raw.replace(
        b"<mailgate.1000.0123456789abcdef@example.com>", str(ack["Message-ID"]).encode()
    )
    assert room.ingest(raw) == "reply CID-1000"
    (detail,) = failing_events(room, "CID-1000")
    assert detail.startswith(f"{CUSTOMER}: ")
    article = room.show("CID-1000")["articles"][-1]
    assert (article["direction"], article["note"]) == ("system", "delivery failure report")


def test_a_delay_warning_marks_nobody(room: Mailroom) -> None:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    raw = make_mail(
        subject="Warning: message [CID-1000] Printer broken delayed 4 hours",
        sender="MAILER-DAEMON@mx.acme.example",
        body=f"Your message to {CUSTOMER} is still being retried.\n",
    )
    assert room.ingest(raw) == "reply CID-1000"
    assert failing_events(room, "CID-1000") == []


def test_fixture_files_exist() -> None:
    assert sorted(p.name for p in Path(BOUNCES).glob("*.eml")) == [
        "exim-text-failed.eml",
        "german-text-unzustellbar.eml",
        "report-boundary-cut.eml",
        "report-truncated.eml",
    ]


@pytest.mark.parametrize(("action", "status"), [("delivered", "2.0.0"), ("delayed", "4.4.7")])
def test_a_report_of_success_or_delay_marks_nobody(
    room: Mailroom, action: str, status: str
) -> None:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        "To: support@example.com\r\nSubject: [CID-1000] Delivery Status Notification\r\n"
        "Message-ID: <dsn-ok-1@mx.acme.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        f"--R\r\nContent-Type: text/plain\r\n\r\nYour message to {CUSTOMER} was {action}.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        "--R--\r\n"
    ).encode()
    assert room.ingest(raw) == "reply CID-1000"
    assert failing_events(room, "CID-1000") == []


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ("Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <alice@acme.example>:\r\n"
         "  Recipient address rejected: User unknown\r\n",
         "550 5.1.1 <alice@acme.example>: Recipient address rejected: User unknown"),
        ("Status: 5.2.2\r\n", "5.2.2"),
    ],
    ids=["diagnostic", "status only"],
)  # fmt: skip
def test_staff_read_what_the_receiving_server_said(room: Mailroom, fields: str, said: str) -> None:
    """Not the report's boilerplate ("This is the mail system at host ... I'm sorry to have
    to inform you ..."), which filled the line staff read the reason on."""
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        "To: support@example.com\r\nSubject: [CID-1000] Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-failed-1@mx.acme.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.acme.example.\r\n"
        "\r\nI'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\n{fields}\r\n"
        "--R\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"To: {CUSTOMER}\r\nMessage-ID: {ack['Message-ID']}\r\n\r\n"
        "--R--\r\n"
    ).encode()
    assert room.ingest(raw) == "reply CID-1000"
    assert failing_events(room, "CID-1000") == [f"{CUSTOMER}: {said}"]
