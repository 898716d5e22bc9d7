"""What EHLO offers, and that it holds: PIPELINING, ENHANCEDSTATUSCODES and SMTPUTF8 (mail
from a UTF-8 address is stored, becomes a ticket and is answered, on file and over a relay)."""

from __future__ import annotations

import re
import smtplib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from sqlmodel import select

from mailgate.config import OutboundConfig
from mailgate.store.models import Outbox, Ticket
from tests.daemon_harness import CUSTOMER, SUPPORT, count, daemon_config, running
from tests.helpers import free_port, poll
from tests.mails import make_mail

JOERG = "jörg@bücher.example"
JOERG_SENT = "jörg@xn--bcher-kva.example"  # mailgate writes domains in their ASCII form
# RFC 2034: a class, a subject and a detail after the basic code.
ENHANCED = re.compile(r"[245]\d\d [245]\.\d{1,3}\.\d{1,3} ")


class Wire:
    """A raw SMTP client: what is sent is exactly what the test wrote."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=15)
        self.file = self.sock.makefile("rb")
        assert self.reply().startswith("220 ")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline().decode("utf-8")
            assert line, f"connection closed after {lines}"
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return "\n".join(lines)

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(data.encode("utf-8") if isinstance(data, str) else data)

    def command(self, line: str) -> str:
        self.send(f"{line}\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextmanager
def wire(address: tuple[str, int]) -> Iterator[Wire]:
    client = Wire(address)
    try:
        yield client
    finally:
        client.close()


def utf8_mail(subject: str, sender: str = f"Jörg Müller <{JOERG}>") -> bytes:
    """A message with UTF-8 in its header fields as RFC 6532 allows: no encoded words."""
    return (
        f"From: {sender}\r\n"
        f"To: {SUPPORT}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 07 Dec 2026 09:00:00 +0100\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@bücher.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Der Drucker im Büro druckt nicht.\r\n"
    ).encode()


def send_utf8(address: tuple[str, int], raw: bytes, sender: str = JOERG) -> str:
    with wire(address) as client:
        assert "SMTPUTF8" in client.command("EHLO client.test")
        assert client.command(f"MAIL FROM:<{sender}> SMTPUTF8").startswith("250 ")
        assert client.command(f"RCPT TO:<{SUPPORT}>").startswith("250 ")
        assert client.command("DATA").startswith("354 ")
        client.send(raw + b".\r\n")
        return client.reply()


def test_ehlo_offers_pipelining_enhanced_status_codes_and_smtputf8(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg, smtplib.SMTP(*mg.address, timeout=10) as client:
        code, _ = client.ehlo("client.test")
        assert code == 250
        offered = set(client.esmtp_features)
        assert {"pipelining", "enhancedstatuscodes", "smtputf8", "8bitmime", "size"} <= offered


def test_every_reply_after_ehlo_carries_an_enhanced_status_code(tmp_path: Path) -> None:
    commands = [
        "NOOP",
        "RSET",
        "VRFY someone",
        "HELP",
        "FROB",  # unknown
        "DATA",  # before MAIL
        "MAIL FROM:no-brackets",
        f"MAIL FROM:<{CUSTOMER}>",
        f"MAIL FROM:<{CUSTOMER}>",  # nested
        "RCPT TO:<someone@elsewhere.example>",
        f"RCPT TO:<{SUPPORT}>",
        "DATA extra",
        "RSET",
        "QUIT",
    ]
    with running(daemon_config(tmp_path)) as mg, wire(mg.address) as client:
        client.command("EHLO client.test")
        replies = {command: client.command(command) for command in commands}
    missing = {c: r for c, r in replies.items() if not ENHANCED.match(r.splitlines()[-1])}
    assert missing == {}
    assert replies["RCPT TO:<someone@elsewhere.example>"].startswith("550 5.1.1 ")
    assert replies["FROB"].startswith("500 5.5.")


def test_pipelined_commands_are_answered_in_order(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg, wire(mg.address) as client:
        client.command("EHLO client.test")
        # One write, as a PIPELINING client sends them (RFC 2920): DATA ends the group.
        client.send(
            f"MAIL FROM:<{CUSTOMER}>\r\nRCPT TO:<nobody@elsewhere.example>\r\n"
            f"RCPT TO:<{SUPPORT}>\r\nDATA\r\n"
        )
        replies = [client.reply()[:3] for _ in range(4)]
        assert replies == ["250", "550", "250", "354"]
        client.send(make_mail(subject="pipelined") + b".\r\n")
        assert client.reply().startswith("250 2.0.0 ")
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")


def parsed(raw: bytes) -> EmailMessage:
    # UTF-8 header fields (RFC 6532) are read as text, not as undecodable bytes.
    return cast(EmailMessage, message_from_string(raw.decode("utf-8"), policy=default))


def acknowledgement(sent: Path) -> EmailMessage:
    return parsed(
        poll(lambda: sorted(sent.glob("*.eml")), what="the acknowledgement")[0].read_bytes()
    )


def test_mail_from_a_utf8_address_is_stored_and_answered(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    with running(config) as mg:
        assert send_utf8(mg.address, utf8_mail("Drucker kaputt")).startswith("250 2.0.0 ")
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")
        ack = acknowledgement(Path(config.outbound.directory))
    assert str(ack["Subject"]).endswith("] Drucker kaputt")
    assert [a.addr_spec for a in ack["To"].addresses] == [JOERG_SENT]


class Relay:
    """A relay on loopback that keeps what it is given, with the MAIL parameters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, list[str], list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    list(envelope.mail_options),
                    bytes(envelope.original_content),
                )
            )
        return "250 2.0.0 Ok"


@contextmanager
def relay(smtputf8: bool) -> Iterator[tuple[Relay, int]]:
    handler, port = Relay(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        server_hostname="relay.test",
        enable_SMTPUTF8=smtputf8,
        decode_data=False,
        ready_timeout=5.0,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def smtp_outbound(port: int) -> OutboundConfig:
    return OutboundConfig(transport="smtp", host="127.0.0.1", port=port, from_=f"<{SUPPORT}>")


def test_the_acknowledgement_to_a_utf8_address_goes_out_with_smtputf8(tmp_path: Path) -> None:
    with (
        relay(smtputf8=True) as (sink, port),
        running(daemon_config(tmp_path, outbound=smtp_outbound(port))) as mg,
    ):
        assert send_utf8(mg.address, utf8_mail("Drucker kaputt")).startswith("250 ")
        poll(lambda: sink.received, what="the acknowledgement at the relay")
    _, rcpt_tos, options, raw = sink.received[0]
    assert rcpt_tos == [JOERG_SENT]
    assert "SMTPUTF8" in [o.upper() for o in options]
    ack = parsed(raw)
    assert [a.addr_spec for a in ack["To"].addresses] == [JOERG_SENT]
    assert str(ack["Subject"]).endswith("] Drucker kaputt")


def test_a_relay_without_smtputf8_gets_the_ascii_form_or_a_clear_failure(tmp_path: Path) -> None:
    ascii_local = "kunde@bücher.example"  # only the domain is international: IDNA will do
    with (
        relay(smtputf8=False) as (sink, port),
        running(daemon_config(tmp_path, outbound=smtp_outbound(port))) as mg,
    ):
        assert (
            send_utf8(mg.address, utf8_mail("Nur die Domain", f"Kunde <{ascii_local}>"))[:3]
            == "250"
        )
        poll(lambda: sink.received, what="the acknowledgement at the relay")
        assert send_utf8(mg.address, utf8_mail("Umlaut vorne")).startswith("250 ")

        def failed() -> list[Outbox]:
            with mg.ctx.store.session() as session:
                rows = session.exec(select(Outbox)).all()
                return [row for row in rows if row.status == "failed"]

        rows = poll(failed, what="the acknowledgement to refuse")
    assert [received[1] for received in sink.received] == [["kunde@xn--bcher-kva.example"]]
    # No SMTPUTF8 asked of a relay that does not offer it.
    assert "SMTPUTF8" not in [o.upper() for o in sink.received[0][2]]
    assert "SMTPUTF8" in (rows[0].last_error or "")


def test_an_address_that_is_not_utf8_is_refused_and_the_session_goes_on(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg, wire(mg.address) as client:
        client.command("EHLO client.test")
        client.send(b"MAIL FROM:<j\xf6rg@example.com> SMTPUTF8\r\n")  # Latin-1, not UTF-8
        assert client.reply().startswith("553 5.1.7 ")
        assert client.command(f"MAIL FROM:<{JOERG}> SMTPUTF8").startswith("250 2.1.0 ")
        client.send(f"RCPT TO:<{SUPPORT}>\r\n".encode()[:-2] + b"\xff\r\n")
        assert client.reply().startswith("5")
        assert client.command(f"RCPT TO:<{SUPPORT}>").startswith("250 2.1.5 ")
