"""SMTP and LMTP intake: the daemon's real listeners driven by smtplib (550, 552, 451, 452,
421, 250), with STARTTLS and the session limits."""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import socket
import ssl
import stat
import subprocess
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from mailgate.config import (
    Config,
)
from mailgate.intake.smtp import ListenError, SmtpIntake, split_listen
from mailgate.service import app
from mailgate.service.app import build_context
from mailgate.store.models import RECEIVED, Intake, IntakeRaw, Ticket
from mailgate.store.spool import accept, stored_raw
from tests.conftest import CORPUS
from tests.daemon_harness import (
    CUSTOMER,
    SUPPORT,
    connect,
    count,
    daemon_config,
    running,
    send_data,
)
from tests.helpers import poll, sqlite_locked
from tests.mails import make_mail, new_message_id


@pytest.mark.parametrize(
    "rcpt",
    [
        "someone@elsewhere.example",
        "support@example.com.evil.example",
        "other@example.com",
    ],
)
def test_unserved_recipient_is_refused(tmp_path: Path, rcpt: str) -> None:
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        code, message = client.rcpt(rcpt)
        assert code == 550
        assert message.decode() == f"5.1.1 <{rcpt}>: recipient not served here"
        # Without a served recipient there is nothing to deliver: no relaying.
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.data(b"Subject: x\r\n\r\nx\r\n")
        assert info.value.smtp_code == 503
        assert count(mg.ctx, Intake) == 0


def test_served_address_is_case_insensitive(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt("Support@Example.COM")[0] == 250


def test_oversized_message_is_refused(tmp_path: Path) -> None:
    big = make_mail(body="a line of text\n" * 300)
    with running(daemon_config(tmp_path, max_size=2000)) as mg:
        code, _ = send_data(mg.address, big)
        assert code == 552
        # A client that announces the size is turned away before it sends anything.
        with connect(mg.address) as client, pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail(CUSTOMER, [SUPPORT], big)
        assert info.value.smtp_code == 552
        assert count(mg.ctx, Intake) == 0


def test_mail_is_stored_then_becomes_a_ticket_with_acknowledgement(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    mid = new_message_id()
    raw = make_mail(message_id=mid)
    with running(config) as mg:
        code, message = send_data(mg.address, raw)
        assert code == 250
        assert message.decode().startswith("2.0.0 Ok: stored as ")
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")
        sent_dir = Path(config.outbound.directory)
        files = poll(lambda: sorted(sent_dir.glob("*.eml")), what="the acknowledgement file")
        with mg.ctx.store.session() as session:
            stored = session.exec(select(Intake)).one()
            stored_bytes = stored_raw(session, stored.id or 0)
    assert stored_bytes == raw  # byte for byte, as the client sent it
    assert stored.envelope_from == CUSTOMER and stored.envelope_to == SUPPORT
    assert len(files) == 1
    ack = message_from_bytes(files[0].read_bytes(), policy=default)
    assert str(ack["Subject"]).startswith("[CID-1000]")
    assert str(ack["In-Reply-To"]) == f"<{mid}>"


def test_busy_database_answers_451_and_the_retry_is_stored(tmp_path: Path) -> None:
    raw = make_mail()
    with running(daemon_config(tmp_path, busy_timeout=0.2)) as mg:
        with sqlite_locked(tmp_path / "mailgate.db"), connect(mg.address) as client:
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail(CUSTOMER, [SUPPORT], raw)
            assert info.value.smtp_code == 451
            assert b"4.3.0" in info.value.smtp_error
        assert count(mg.ctx, Intake) == 0
        # The MTA tries again later with the same bytes.
        with connect(mg.address) as client:
            assert client.sendmail(CUSTOMER, [SUPPORT], raw) == {}
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")


def test_left_over_message_waits_for_the_database_then_becomes_a_ticket(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored before a crash, processed at the next start; a locked database only delays it."""
    caplog.set_level(logging.INFO, logger="mailgate")
    config = daemon_config(tmp_path, busy_timeout=0.2)
    earlier = build_context(config)
    stored = accept(earlier.store, make_mail(), "smtp", earlier.clock(), CUSTOMER, [SUPPORT])
    earlier.store.dispose()
    with sqlite_locked(tmp_path / "mailgate.db") as release, running(config) as mg:
        poll(lambda: "event=store_failing" in caplog.text, what="the failure to be logged")
        with mg.ctx.store.session() as session:
            intake = session.get(Intake, stored.intake_id)
            assert intake is not None and intake.status == RECEIVED
        release()
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket after the lock went")
    assert caplog.text.count("event=store_failing") == 1  # once, not every retry
    assert "event=store_recovered" in caplog.text


def test_null_sender_is_accepted(tmp_path: Path) -> None:
    """Bounces come with MAIL FROM:<>; they must be stored (and handled) like any mail."""
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert client.sendmail("<>", [SUPPORT], make_mail()) == {}
        with mg.ctx.store.session() as session:
            assert session.exec(select(Intake.envelope_from)).one() == ""


def test_shutting_down_answers_421(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    ctx = build_context(config)
    address = split_listen(config.smtp.listen)

    async def scenario() -> None:
        intake = SmtpIntake(ctx, lambda _id: None)
        await intake.start()
        early = await asyncio.to_thread(connect, address)
        intake.begin_shutdown()
        with pytest.raises(smtplib.SMTPConnectError) as info:
            await asyncio.to_thread(smtplib.SMTP, *address, timeout=10)
        assert info.value.smtp_code == 421
        # A session opened before the flag may finish its talk, not start a new message.
        assert (await asyncio.to_thread(early.mail, CUSTOMER))[0] == 421
        await asyncio.to_thread(early.close)
        await intake.stop(grace=1)

    try:
        asyncio.run(scenario())
    finally:
        ctx.store.dispose()


def test_port_taken_exits_69_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = daemon_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(split_listen(config.smtp.listen))
        taken.listen()
        with caplog.at_level(logging.INFO, logger="mailgate"):
            assert app.run(config) == app.EX_UNAVAILABLE
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    assert "event=listen_failed" in errors[0].getMessage()
    assert config.smtp.listen in errors[0].getMessage()


# Limits --------------------------------------------------------------------------------------


def test_too_many_recipients_get_452_and_the_rest_is_stored(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path, max_recipients=2)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.rcpt(SUPPORT.upper())[0] == 250
        code, message = client.rcpt(SUPPORT)
        assert (code, message) == (452, b"4.5.3 too many recipients")
        assert client.data(make_mail())[0] == 250
        with mg.ctx.store.session() as session:
            assert session.exec(select(Intake.envelope_to)).one().count("\n") == 1


def plain_mail(body_line: bytes) -> bytes:
    """A message written by hand, so no library rewraps or encodes the long line."""
    head = f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: long\r\n"
    head += f"Message-ID: <{new_message_id()}>\r\n\r\n"
    return head.encode("ascii") + body_line + b"\r\n"


def test_line_length_limit(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg:
        # 998 octets is the longest line RFC 5322 allows, also when it starts with a dot.
        assert send_data(mg.address, plain_mail(b"a" * 998))[0] == 250
        assert send_data(mg.address, plain_mail(b"." * 998))[0] == 250
        code, message = send_data(mg.address, plain_mail(b"b" * 1200))
        assert code == 500 and b"Line too long" in message
        assert count(mg.ctx, Intake) == 2
    with running(daemon_config(tmp_path / "lenient", max_line_length=2000)) as mg:
        assert send_data(mg.address, plain_mail(b"b" * 1200))[0] == 250


@pytest.mark.parametrize("length", [1000, 1200, 200_000])
def test_over_long_line_gets_500_and_the_session_goes_on(tmp_path: Path, length: int) -> None:
    """Just over the limit, over the reader's buffer, and far over it (read in pieces)."""
    good = plain_mail(b"g" * 998)
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        code, message = client.data(plain_mail(b"b" * length))
        assert code == 500 and b"Line too long" in message
        # The rest of the message was read and dropped: the next transaction is in step.
        assert client.sendmail(CUSTOMER, [SUPPORT], good) == {}
        with mg.ctx.store.session() as session:
            assert session.exec(select(IntakeRaw.raw)).one() == good


def test_oversized_message_gets_552_and_the_session_goes_on(tmp_path: Path) -> None:
    good = make_mail()
    with running(daemon_config(tmp_path, max_size=2000)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        code, message = client.data(make_mail(body="a line of text\n" * 300))
        assert (code, message) == (552, b"5.3.4 message too large")
        assert client.sendmail(CUSTOMER, [SUPPORT], good) == {}
        with mg.ctx.store.session() as session:
            assert session.exec(select(IntakeRaw.raw)).one() == good


def send_raw_data(client: smtplib.SMTP, wire: bytes) -> tuple[int, bytes]:
    """DATA with the bytes exactly as given, transparent dots and final dot included
    (smtplib's data() would add the dots itself)."""
    assert client.putcmd("data") is None and client.getreply()[0] == 354
    client.send(wire)
    return client.getreply()


def test_transparent_dots_are_taken_out(tmp_path: Path) -> None:
    """RFC 5321 4.5.2: the client doubles a leading dot, the server takes one away."""
    head = f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: dots\r\n"
    head += f"Message-ID: <{new_message_id()}>\r\n\r\n"
    body = b".hidden\r\n..two\r\n.\r\nmid.dle\r\n"
    wire_body = b"..hidden\r\n...two\r\n..\r\nmid.dle\r\n"  # the lone dot inside, doubled
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        assert send_raw_data(client, head.encode("ascii") + wire_body + b".\r\n")[0] == 250
        with mg.ctx.store.session() as session:
            assert session.exec(select(IntakeRaw.raw)).one() == head.encode("ascii") + body


def test_command_sent_with_the_final_dot_is_answered_after_it(tmp_path: Path) -> None:
    """A pipelining client may send its next MAIL in the same packet as the final dot: the
    message ends at the dot, and the command after it is read as a command."""
    mail = plain_mail(b"the last line.")
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.putcmd("data") is None and client.getreply()[0] == 354
        client.send(mail + b".\r\nMAIL FROM:<" + CUSTOMER.encode("ascii") + b">\r\n")
        assert client.getreply()[0] == 250  # the message, stored
        assert client.getreply()[0] == 250  # the MAIL that came with it
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.data(make_mail())[0] == 250
        with mg.ctx.store.session() as session:
            assert mail in session.exec(select(IntakeRaw.raw)).all()
        assert count(mg.ctx, Intake) == 2


def test_every_corpus_mail_is_stored_as_the_client_sent_it(tmp_path: Path) -> None:
    """The real-world mails through one session: each is stored byte for byte as smtplib
    sent it (its lines ended with CRLF, leading dots doubled on the wire and taken out)."""
    files = sorted(CORPUS.rglob("*.eml"))
    sent = set()
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        for path in files:
            raw = re.sub(rb"\r\n|\n|\r(?!\n)", b"\r\n", path.read_bytes())
            raw += b"" if raw.endswith(b"\r\n") else b"\r\n"  # as smtplib ends the data
            assert client.mail(CUSTOMER)[0] == 250
            assert client.rcpt(SUPPORT)[0] == 250
            assert client.data(raw)[0] == 250, path.name
            sent.add(raw)
        with mg.ctx.store.session() as session:
            assert set(session.exec(select(IntakeRaw.raw)).all()) == sent
    assert len(files) > 50


def test_data_out_of_turn_is_refused(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        # After EHLO every reply carries an enhanced status code (RFC 2034).
        assert client.docmd("HELP", "DATA") == (250, b"2.0.0 Syntax: DATA")
        assert client.docmd("DATA")[0] == 503  # no MAIL, no RCPT
        assert client.mail(CUSTOMER)[0] == 250
        assert client.docmd("DATA")[0] == 503  # no RCPT
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.docmd("DATA", "now")[0] == 501
        assert client.data(make_mail())[0] == 250


def test_hang_up_during_data_stores_nothing(tmp_path: Path) -> None:
    with running(daemon_config(tmp_path)) as mg:
        client = connect(mg.address)
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.putcmd("data") is None and client.getreply()[0] == 354
        client.send(plain_mail(b"half a message"))
        client.close()  # without the final dot
        # The daemon goes on serving; only the complete message is stored.
        assert send_data(mg.address, make_mail())[0] == 250
        assert count(mg.ctx, Intake) == 1


def read_until_closed(address: tuple[str, int], timeout: float = 10.0) -> bytes:
    """Everything the server says to a client that says nothing, until it hangs up."""
    received = b""
    with socket.create_connection(address, timeout=timeout) as sock:
        while chunk := sock.recv(4096):
            received += chunk
    return received


def test_session_time_limit_answers_421_and_closes(tmp_path: Path) -> None:
    config = daemon_config(tmp_path, session_timeout=0.5, idle_timeout=30.0)
    with running(config) as mg:
        said = read_until_closed(mg.address)
    assert said.startswith(b"220 ")
    assert b"\r\n421 4.4.2 " in said and b"session time limit reached" in said


def test_idle_time_limit_answers_421_and_closes(tmp_path: Path) -> None:
    config = daemon_config(tmp_path, session_timeout=30.0, idle_timeout=0.5)
    with running(config) as mg:
        said = read_until_closed(mg.address)
    assert b"\r\n421 4.4.2 " in said and b"idle time limit reached" in said


def test_slow_data_is_not_idle(tmp_path: Path) -> None:
    """Idle means no byte from the client, not no command: a slow DATA is not cut off."""
    config = daemon_config(tmp_path, session_timeout=30.0, idle_timeout=1.0)
    with running(config) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.putcmd("data") is None and client.getreply()[0] == 354
        client.send(plain_mail(b"first line").removesuffix(b"\r\n"))
        for n in range(6):  # 1.8 s in all: longer than the idle limit, never idle for long
            time.sleep(0.3)  # a slow client, not a wait for a condition
            client.send(f"\r\nline {n}".encode("ascii"))
        client.send(b"\r\n.\r\n")
        assert client.getreply()[0] == 250


# STARTTLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, valid for a day."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_starttls_is_offered_only_with_a_certificate(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    with running(daemon_config(tmp_path)) as mg, connect(mg.address) as client:
        assert not client.has_extn("starttls")
    cert, key = certificate
    config = daemon_config(tmp_path / "tls", tls_cert_file=str(cert), tls_key_file=str(key))
    with running(config) as mg, connect(mg.address) as client:
        assert client.has_extn("starttls")
        assert client.starttls(context=trusting(cert))[0] == 220
        cipher = client.sock.cipher()  # type: ignore[union-attr]
        assert cipher is not None
        assert client.sendmail(CUSTOMER, [SUPPORT], make_mail()) == {}
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")


def test_require_tls_refuses_mail_in_plain_text(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate  # the key may also sit in the certificate file
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + certificate[1].read_bytes())
    config = daemon_config(tmp_path, tls_cert_file=str(both), require_tls=True)
    with running(config) as mg, connect(mg.address) as client:
        assert client.mail(CUSTOMER)[0] == 530
        client.starttls(context=trusting(cert))
        assert client.sendmail(CUSTOMER, [SUPPORT], make_mail()) == {}
        assert count(mg.ctx, Intake) == 1


def test_unreadable_certificate_is_a_listen_error(tmp_path: Path) -> None:
    config = daemon_config(tmp_path, tls_cert_file=str(tmp_path / "missing.pem"))
    ctx = build_context(config)
    try:
        with pytest.raises(ListenError, match="cannot load TLS certificate"):
            asyncio.run(SmtpIntake(ctx, lambda _id: None).start())
    finally:
        ctx.store.dispose()


# LMTP ----------------------------------------------------------------------------------------

COMMENTS = "support-comment@example.com"


def lmtp_config(tmp_path: Path, **smtp: Any) -> Config:
    return daemon_config(
        tmp_path, lmtp_socket=str(tmp_path / "lmtp.sock"), comment_address=COMMENTS, **smtp
    )


def test_lmtp_answers_once_per_recipient(tmp_path: Path) -> None:
    config = lmtp_config(tmp_path)
    path = Path(config.smtp.lmtp_socket)
    with running(config) as mg:
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        with smtplib.LMTP(str(path), timeout=10) as client:
            assert client.ehlo("mta.test")[0] == 250  # smtplib sends LHLO
            assert client.mail(CUSTOMER)[0] == 250
            assert client.rcpt(SUPPORT)[0] == 250
            assert client.rcpt(COMMENTS)[0] == 250  # the comment address is served too
            assert client.rcpt("someone@elsewhere.example")[0] == 550
            first = client.data(make_mail())
            second = client.getreply()
        assert first[0] == second[0] == 250
        assert first[1] == second[1]  # one stored copy for both recipients
        with mg.ctx.store.session() as session:
            assert session.exec(select(Intake.envelope_to)).one().split() == [SUPPORT, COMMENTS]
    assert not path.exists()  # removed at shutdown


def test_lmtp_refusal_of_the_message_is_answered_per_recipient(tmp_path: Path) -> None:
    config = lmtp_config(tmp_path, max_size=2000)
    with running(config) as mg, smtplib.LMTP(config.smtp.lmtp_socket, timeout=10) as client:
        client.ehlo("mta.test")
        client.mail(CUSTOMER)
        client.rcpt(SUPPORT)
        client.rcpt(COMMENTS)
        assert client.data(make_mail(body="a line of text\n" * 300))[0] == 552
        assert client.getreply()[0] == 552
        # The session is still in step: the next command gets its own answer.
        assert client.noop()[0] == 250
        assert count(mg.ctx, Intake) == 0


def test_lmtp_stale_socket_is_replaced(tmp_path: Path) -> None:
    config = lmtp_config(tmp_path)
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(config.smtp.lmtp_socket)  # as a crashed run leaves it
    with running(config), smtplib.LMTP(config.smtp.lmtp_socket, timeout=10) as client:
        assert client.ehlo("mta.test")[0] == 250
