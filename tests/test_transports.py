"""Transports: .eml files written atomically; SMTP delivery against a real aiosmtpd sink; the
outbox worker against a relay that goes away and comes back."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from mailgate.config import OutboundConfig
from mailgate.outbound.compose import Outgoing, compose
from mailgate.outbound.context import Context
from mailgate.outbound.file_transport import FileTransport
from mailgate.outbound.outbox import deliver_due
from mailgate.outbound.transports import (
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    Transport,
)
from mailgate.service.app import build_context, build_transport
from mailgate.store.models import FAILED, QUEUED, SENT
from tests.conftest import Clock, make_config
from tests.daemon_harness import smtp_server
from tests.helpers import ingest, outbox
from tests.mails import make_mail
from tests.test_cli import mailgate

NOW = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)
SENDER = "support@example.com"
CUSTOMER = "alice@kunde.example"
RAW = compose(
    Outgoing(
        from_addr=f"Support <{SENDER}>",
        to=(CUSTOMER,),
        subject="[CID-1042] Drucker kaputt – Rückmeldung",
        text="Guten Tag,\n.\nEine Zeile mit nur einem Punkt steht darüber.\n",
        message_id="<mailgate.1042.0123456789abcdef@example.com>",
    ),
    NOW,
)


def send(
    transport: Transport,
    recipients: list[str],
    raw: bytes = RAW,
    envelope_from: str = SENDER,
    hint: str = "1-acknowledgement",
) -> str:
    return asyncio.run(transport.send(envelope_from, recipients, raw, hint))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# FileTransport ---------------------------------------------------------------------------


def test_file_transport_writes_a_message_that_parses_back(tmp_path: Path) -> None:
    outdir = tmp_path / "var" / "sent"  # does not exist yet
    path = Path(send(FileTransport(outdir, clock=lambda: NOW), [CUSTOMER]))
    assert path.parent == outdir
    assert path.name == "20261102T093015.123456Z-1-acknowledgement.eml"
    assert path.read_bytes() == RAW
    msg = message_from_bytes(path.read_bytes(), policy=default)
    assert str(msg["Subject"]) == "[CID-1042] Drucker kaputt – Rückmeldung"
    assert [p.name for p in outdir.iterdir()] == [path.name]  # no temporary file left over


def test_file_transport_never_overwrites(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path, clock=lambda: NOW)
    first = send(transport, [CUSTOMER], raw=b"Subject: one\r\n\r\n1\r\n")
    second = send(transport, [CUSTOMER], raw=b"Subject: two\r\n\r\n2\r\n")
    assert first != second
    assert Path(first).read_bytes().startswith(b"Subject: one")
    assert Path(second).read_bytes().startswith(b"Subject: two")


def test_file_transport_name_hint_cannot_leave_the_directory(tmp_path: Path) -> None:
    path = Path(send(FileTransport(tmp_path / "sent"), [CUSTOMER], hint="../../etc/pass wd"))
    assert path.parent == tmp_path / "sent"
    assert path.name.endswith("-etc_pass_wd.eml")


def test_file_transport_failure_is_temporary(tmp_path: Path) -> None:
    blocked = tmp_path / "sent"
    blocked.write_text("a file where the directory should be")
    with pytest.raises(TemporaryFailure, match="cannot write"):
        send(FileTransport(blocked), [CUSTOMER])


# SmtpTransport ---------------------------------------------------------------------------


@dataclass
class Sink:
    """An aiosmtpd handler that records what it accepts, or answers with a fixed refusal."""

    rcpt_reply: dict[str, str] = field(default_factory=dict)  # recipient -> refusal
    data_reply: str | None = None
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as 4711"


def smtp_sink(handler: Sink, port: int | None = None) -> AbstractContextManager[int]:
    return smtp_server(handler, port)


def relay(port: int, security: str = "none", **kwargs: Any) -> SmtpTransport:
    return SmtpTransport(
        "127.0.0.1",
        port,
        security,
        None,
        None,
        timeout=5.0,
        local_hostname="mailgate.test",
        **kwargs,
    )


def test_smtp_delivers_the_bytes_unchanged() -> None:
    sink = Sink()
    with smtp_sink(sink) as port:
        answer = send(relay(port), [CUSTOMER, "bob@kunde.example"])
    assert answer == "2.0.0 Ok: queued as 4711"
    ((mail_from, rcpt_tos, content),) = sink.received
    assert (mail_from, rcpt_tos) == (SENDER, [CUSTOMER, "bob@kunde.example"])
    assert content == RAW  # the lone "." line survived dot-stuffing both ways


def test_smtp_null_sender_is_allowed() -> None:
    sink = Sink()
    with smtp_sink(sink) as port:
        send(relay(port), [CUSTOMER], envelope_from="")
    assert sink.received[0][0] == "<>"


@pytest.mark.parametrize(
    ("sink", "failure", "reply"),
    [
        (Sink(rcpt_reply={CUSTOMER: "550 5.1.1 no such user"}), PermanentFailure, "550 5.1.1"),
        (Sink(rcpt_reply={CUSTOMER: "451 4.3.0 try later"}), TemporaryFailure, "451 4.3.0"),
        (Sink(data_reply="550 5.7.1 message refused"), PermanentFailure, "550 5.7.1"),
        (Sink(data_reply="451 4.3.0 try later"), TemporaryFailure, "451 4.3.0"),
    ],
    ids=["rcpt-550", "rcpt-451", "data-550", "data-451"],
)
def test_smtp_refusals(sink: Sink, failure: type[Exception], reply: str) -> None:
    with smtp_sink(sink) as port, pytest.raises(failure) as info:
        send(relay(port), [CUSTOMER])
    assert reply in str(info.value)  # the relay's code and words reach the outbox row
    assert sink.received == []


def test_smtp_one_recipient_refused_still_delivers_to_the_other() -> None:
    sink = Sink(rcpt_reply={"gone@kunde.example": "550 5.1.1 no such user"})
    with smtp_sink(sink) as port:
        answer = send(relay(port), ["gone@kunde.example", CUSTOMER])
    assert sink.received[0][1] == [CUSTOMER]
    assert "gone@kunde.example: 550 5.1.1 no such user" in answer


def test_smtp_connection_refused_is_temporary() -> None:
    with pytest.raises(TemporaryFailure, match="SMTPConnectError"):
        send(relay(free_port()), [CUSTOMER])


def test_smtp_silent_server_times_out_as_temporary() -> None:
    # Accepts the connection (the kernel's backlog does) but never greets.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        transport = SmtpTransport("127.0.0.1", port, "none", None, None, timeout=0.3)
        with pytest.raises(TemporaryFailure, match="Timeout"):
            send(transport, [CUSTOMER])


@pytest.mark.parametrize(
    ("envelope_from", "recipients"),
    [
        (SENDER, [f"{CUSTOMER}>\r\nRCPT TO:<evil@x.example"]),
        (f"{SENDER}> SIZE=1", [CUSTOMER]),
        (SENDER, ["Alice <alice@kunde.example>"]),
        (SENDER, []),
    ],
)
def test_smtp_unusable_envelope_is_refused_before_connecting(
    envelope_from: str, recipients: list[str]
) -> None:
    # A closed port: only the check before connecting can make this permanent.
    with pytest.raises(PermanentFailure):
        send(relay(free_port()), recipients, envelope_from=envelope_from)


def test_smtp_security_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="security"):
        SmtpTransport("127.0.0.1", 25, "tls", None, None)


def test_close_is_harmless(tmp_path: Path) -> None:
    asyncio.run(relay(free_port()).close())
    asyncio.run(FileTransport(tmp_path).close())


def test_smtp_tls_failure_is_temporary() -> None:
    # Implicit TLS against a plain-text server: the handshake fails, as with a wrong port.
    with smtp_sink(Sink()) as port, pytest.raises(TemporaryFailure):
        send(relay(port, "ssl", validate_certs=False), [CUSTOMER])


def test_smtp_required_starttls_missing_is_temporary() -> None:
    # "starttls" means required: a relay that does not offer it gets nothing in plain text.
    sink = Sink()
    with smtp_sink(sink) as port, pytest.raises(TemporaryFailure, match="STARTTLS"):
        send(relay(port, "starttls"), [CUSTOMER])
    assert sink.received == []


# The outbox worker -----------------------------------------------------------------------

ALICE = "alice@acme.example"  # make_mail's default sender: the acknowledgement goes there


@pytest.fixture
def relay_ctx(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[tuple[Context, int]]:
    """A store whose outbound relay is a free local port where nothing listens yet."""
    port = free_port()
    outbound = OutboundConfig(
        transport="smtp", host="127.0.0.1", port=port, from_="Support <support@example.com>"
    )
    ctx = dataclasses.replace(
        build_context(make_config(tmp_path, db_url, outbound=outbound)), clock=clock
    )
    yield ctx, port
    ctx.store.dispose()


def deliver(ctx: Context, transport: Transport) -> dict[str, int]:
    return asyncio.run(deliver_due(ctx, transport))


def message_ids(sink: Sink) -> Counter[str]:
    return Counter(
        str(message_from_bytes(content, policy=default)["Message-ID"]).strip("<>")
        for _, _, content in sink.received
    )


def test_relay_down_then_back_delivers_every_acknowledgement_once(
    relay_ctx: tuple[Context, int], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.outbox")
    ctx, port = relay_ctx
    sink = Sink()
    with smtp_sink(sink, port):
        pass  # the relay was there, and is gone now
    for n in range(3):
        ingest(ctx, make_mail(sender=f"Kunde {n} <k{n}@firma{n}.example>"))
    transport = build_transport(ctx.config)

    assert deliver(ctx, transport) == {SENT: 0, QUEUED: 3, FAILED: 0}
    clock.advance(seconds=61)  # past the first backoff (60 s): a second round, still down
    assert deliver(ctx, transport) == {SENT: 0, QUEUED: 3, FAILED: 0}
    rows = outbox(ctx)
    assert [(r.status, r.attempts) for r in rows] == [(QUEUED, 2)] * 3
    assert all("Connect" in r.last_error for r in rows)
    assert caplog.text.count("event=relay_unavailable") == 1  # not once per row per round
    assert "event=delivery_failed" not in caplog.text

    with smtp_sink(sink, port):  # the relay is back on the same port
        clock.advance(seconds=121)  # past the second backoff
        assert deliver(ctx, transport) == {SENT: 3, QUEUED: 0, FAILED: 0}
        assert deliver(ctx, transport) == {SENT: 0, QUEUED: 0, FAILED: 0}
    assert message_ids(sink) == Counter({r.message_id: 1 for r in rows})
    assert caplog.text.count("event=relay_recovered") == 1
    assert [(r.status, r.last_error) for r in outbox(ctx)] == [(SENT, "")] * 3


def test_too_old_to_retry_becomes_failed(relay_ctx: tuple[Context, int], clock: Clock) -> None:
    ctx, _ = relay_ctx  # nothing ever listens there
    transport = build_transport(ctx.config)
    ingest(ctx, make_mail())
    assert deliver(ctx, transport)[QUEUED] == 1
    clock.advance(hours=49)
    ingest(ctx, make_mail(sender="Bob <bob@firma.example>"))  # young: it stays queued
    assert deliver(ctx, transport) == {SENT: 0, QUEUED: 1, FAILED: 1}
    old, young = outbox(ctx)
    assert (old.status, old.attempts) == (FAILED, 2)
    assert "Connect" in old.last_error and "older than 48 h" in old.last_error
    assert (young.status, young.attempts) == (QUEUED, 1)


@pytest.mark.parametrize(
    ("reply", "status"),
    [("550 5.1.1 <alice@acme.example>: no such user", FAILED), ("451 4.3.0 greylisted", QUEUED)],
    ids=["550-fails-at-once", "451-waits"],
)
def test_refusal_at_rcpt_is_recorded(tmp_path: Path, clock: Clock, reply: str, status: str) -> None:
    sink = Sink(rcpt_reply={ALICE: reply})
    with smtp_sink(sink) as port:
        outbound = OutboundConfig(transport="smtp", host="127.0.0.1", port=port)
        ctx = dataclasses.replace(
            build_context(make_config(tmp_path, outbound=outbound)), clock=clock
        )
        try:
            ingest(ctx, make_mail())
            assert deliver(ctx, build_transport(ctx.config))[status] == 1
        finally:
            ctx.store.dispose()
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n', encoding="utf-8")
    (row,) = json.loads(mailgate("outbox", "list", "--format", "json", config=config).stdout)
    assert (row["status"], row["attempts"]) == (status, 1)
    assert reply in row["last_error"]  # the relay's own words
    assert sink.received == []
