"""A bounce changes an address's state only when it proves it reports on our mail: sent to a
signed VERP address, or quoting a Message-ID we sent to the address it names."""

from __future__ import annotations

import dataclasses
import stat
from email.message import EmailMessage
from pathlib import Path

from mailgate.config import HttpConfig, OutboundConfig, SecurityConfig
from mailgate.desk.agents import add_agent
from tests.daemon_harness import CUSTOMER, SUPPORT, Sink, connect, daemon_config, relay, running
from tests.helpers import poll
from tests.mailroom import AGENT, Mailroom, text_of
from tests.mails import make_mail

__all__ = ["relay"]  # a fixture, used by name

BOB = "bob@beta.example"


def forged_bounce(to: str, subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    """What anyone can write: plain text from "MAILER-DAEMON" to a guessed VERP address."""
    return (
        "From: MAILER-DAEMON@evil.example\r\n"
        f"To: {to}\r\nSubject: {subject}\r\n"
        "Message-ID: <forged-1@evil.example>\r\n\r\n"
        f"Delivery to the following recipient failed permanently:\r\n\r\n  {CUSTOMER}\r\n"
    ).encode()


def report(recipient: str, quoted_id: str, to: str = SUPPORT) -> bytes:
    """An RFC 3464 report naming `recipient`, quoting the headers of the returned mail."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        f"To: <{to}>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.acme.example>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {quoted_id}\r\nTo: {recipient}\r\nSubject: [CID-1000] Printer broken\r\n"
        "\r\n--b1--\r\n"
    ).encode()


def answer(room: Mailroom, cid: str = "CID-1000") -> list[EmailMessage]:
    """Anna answers the ticket; the mail that went out because of it."""
    raw = make_mail(subject=f"Re: [{cid}] Printer broken", body="Try this.", sender=AGENT)
    assert room.ingest(raw) == f"reply {cid}"
    return room.new_mail()


def failing_events(room: Mailroom, cid: str = "CID-1000") -> list[str]:
    return [e["detail"] for e in room.show(cid)["events"] if e["action"] == "address_failing"]


def opened(room: Mailroom) -> EmailMessage:
    assert room.ingest(make_mail()) == "ticket CID-1000"
    (ack,) = room.new_mail()
    return ack


def test_a_forged_bounce_to_a_guessed_verp_address_marks_nobody(room: Mailroom) -> None:
    opened(room)
    for guess in ("support+bounce-1@example.com", "support+bounce-1-0123456789abcdef@example.com"):
        assert room.ingest(forged_bounce(guess)) == "ignored: bounce about no ticket of ours"
    assert failing_events(room) == []
    (sent,) = answer(room)  # the agent's answer reaches her
    assert str(sent["To"]) == CUSTOMER
    assert "Try this." in text_of(sent)


def test_a_forged_bounce_naming_the_ticket_is_kept_as_an_unverified_report(
    room: Mailroom,
) -> None:
    opened(room)
    raw = forged_bounce("support+bounce-1@example.com", "[CID-1000] Undelivered Mail")
    assert room.ingest(raw) == "reply CID-1000"
    assert room.new_mail() == []  # never answered
    article = room.show("CID-1000")["articles"][-1]
    assert (article["direction"], article["note"]) == ("system", "unverified delivery report")
    assert failing_events(room) == []
    (sent,) = answer(room)
    assert str(sent["To"]) == CUSTOMER


def test_a_report_quoting_our_message_id_to_that_recipient_marks_her(room: Mailroom) -> None:
    ack = opened(room)
    assert room.ingest(report(CUSTOMER, str(ack["Message-ID"]))) == "reply CID-1000"
    (detail,) = failing_events(room)
    assert detail.startswith(f"{CUSTOMER}: ")
    (notice,) = answer(room)  # not sent to her; Anna is told
    assert str(notice["To"]) == AGENT


def test_a_report_marks_only_recipients_of_the_mail_it_quotes(room: Mailroom) -> None:
    ack = opened(room)
    assert room.ingest(make_mail(subject="Login", sender=f"Bob <{BOB}>")) == "ticket CID-1001"
    room.new_mail()
    # Alice's acknowledgement quoted, Bob named: Bob never got that mail.
    assert room.ingest(report(BOB, str(ack["Message-ID"]))) == "reply CID-1000"
    assert failing_events(room) == []
    (sent,) = answer(room, "CID-1001")
    assert str(sent["To"]) == BOB


def test_a_report_quoting_a_message_id_we_never_sent_marks_nobody(room: Mailroom) -> None:
    opened(room)
    raw = report(CUSTOMER, "<mailgate.1000.0123456789abcdef@example.com>")
    assert room.ingest(raw.replace(b"Subject: Undel", b"Subject: [CID-1000] Undel")) == (
        "reply CID-1000"
    )
    assert failing_events(room) == []


def test_the_key_is_made_once_and_readable_by_its_owner_only(room: Mailroom) -> None:
    opened(room)
    key = room.tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_text()
    assert len(bytes.fromhex(before.strip())) == 32
    answer(room)
    assert key.read_text() == before


def test_a_configured_secret_file_is_used(room: Mailroom, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "mailgate.key"
    room.configure(f'secret_file = "{shared}"\n')  # the file ends in its [security] section
    ack = opened(room)
    assert shared.exists() and not (tmp_path / "data" / "secret.key").exists()
    assert room.ingest(report(CUSTOMER, str(ack["Message-ID"]))) == "reply CID-1000"
    assert len(failing_events(room)) == 1


def test_over_smtp_a_forged_bounce_marks_nobody_and_a_real_one_does(
    tmp_path: Path, relay: tuple[Sink, int]
) -> None:
    sink, port = relay
    outbound = OutboundConfig(
        transport="smtp", host="127.0.0.1", port=port, from_=f"Support <{SUPPORT}>"
    )
    config = dataclasses.replace(
        daemon_config(tmp_path, outbound=outbound),
        security=SecurityConfig(agent_verification="none"),
        http=HttpConfig(listen=""),
    )
    with running(config) as mg:
        with mg.ctx.store.session() as session:
            add_agent(session, AGENT, "Anna", None, mg.ctx.clock())

        def deliver(raw: bytes, sender: str, to: str) -> None:
            with connect(mg.address) as client:
                client.sendmail(sender, [to], raw)

        def answered(count: int) -> None:
            raw = make_mail(subject="Re: [CID-1000] Printer broken", body="Try this.", sender=AGENT)
            deliver(raw, AGENT, SUPPORT)
            poll(lambda: len(sink.to(AGENT)) + len(sink.to(CUSTOMER)) >= count, what="the answer")

        deliver(make_mail(), CUSTOMER, SUPPORT)
        (ack,) = poll(lambda: sink.to(CUSTOMER), what="the acknowledgement")
        assert ack.mail_from.startswith("support+bounce-") and ack.mail_from != (
            "support+bounce-1@example.com"
        )
        # Anyone can send "MAILER-DAEMON" mail to the counter's next value.
        deliver(forged_bounce("support+bounce-1@example.com"), "", "support+bounce-1@example.com")
        answered(2)
        assert len(sink.to(CUSTOMER)) == 2 and sink.to(AGENT) == []
        # The relay's real bounce comes back to the signed envelope sender.
        real = forged_bounce(ack.mail_from).replace(b"evil.example", b"mx.acme.example")
        deliver(real, "", ack.mail_from)
        answered(3)
        assert len(sink.to(CUSTOMER)) == 2  # her address fails: Anna is told instead
        (notice,) = sink.to(AGENT)
        assert CUSTOMER in str(notice.message["Subject"])
