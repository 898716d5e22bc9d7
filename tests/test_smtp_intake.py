"""SMTP intake: the daemon's real listener driven by smtplib (550, 552, 451, 421, 250)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import select

from mailgate import daemon
from mailgate.app import build_context, build_transport
from mailgate.config import (
    Config,
    DatabaseConfig,
    OutboundConfig,
    PathsConfig,
    SmtpConfig,
)
from mailgate.context import Context
from mailgate.daemon import serve
from mailgate.intake.smtp import SmtpIntake, split_listen
from mailgate.intake.spool import accept
from mailgate.models import RECEIVED, Intake, Ticket
from tests.mails import make_mail, new_message_id

T = TypeVar("T")
CUSTOMER = "alice@acme.example"
SUPPORT = "support@example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_config(
    tmp_path: Path,
    busy_timeout: float = 5.0,
    max_size: int = 1_000_000,
    outbound: OutboundConfig | None = None,
) -> Config:
    """SQLite, data and sent mail under tmp_path; SMTP intake on a free local port."""
    return Config(
        source="(test)",
        database=DatabaseConfig(url=f"sqlite:///{tmp_path}/mailgate.db", busy_timeout=busy_timeout),
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        smtp=SmtpConfig(
            listen=f"127.0.0.1:{free_port()}", addresses=[SUPPORT], max_message_size=max_size
        ),
        outbound=outbound
        or OutboundConfig(
            transport="file",
            directory=str(tmp_path / "sent"),
            from_=f"Support <{SUPPORT}>",
        ),
    )


def poll(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """The condition's first truthy value; fails the test when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class DaemonThread:
    """serve() on an event loop in a thread of its own, stopped the way a signal would."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ctx = build_context(config)
        self.started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mailgate-daemon")

    async def _main(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        await serve(self.ctx, build_transport(self.config), self.stop, self.started.set)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the test thread, which raises it
            self.error = exc
            self.started.set()

    def start(self) -> None:
        self.thread.start()
        assert self.started.wait(15), "daemon did not start"
        if self.error is not None:
            raise self.error

    def shutdown(self) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "daemon did not stop"
        self.ctx.store.dispose()
        if self.error is not None:
            raise self.error

    @property
    def address(self) -> tuple[str, int]:
        return split_listen(self.config.smtp.listen)


@contextmanager
def running(config: Config) -> Iterator[DaemonThread]:
    running_daemon = DaemonThread(config)
    running_daemon.start()
    try:
        yield running_daemon
    finally:
        running_daemon.shutdown()


def connect(address: tuple[str, int]) -> smtplib.SMTP:
    client = smtplib.SMTP(*address, timeout=10)
    client.ehlo("client.test")
    return client


def count(ctx: Context, model: Any) -> int:
    with ctx.store.session() as session:
        return len(session.exec(select(model)).all())


def send_data(address: tuple[str, int], raw: bytes, rcpt: str = SUPPORT) -> tuple[int, bytes]:
    """One transaction without the SIZE parameter, so DATA itself gets the answer."""
    with connect(address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(rcpt)[0] == 250
        return client.data(raw)


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
    assert stored.raw == raw  # byte for byte, as the client sent it
    assert stored.envelope_from == CUSTOMER and stored.envelope_to == SUPPORT
    assert len(files) == 1
    ack = message_from_bytes(files[0].read_bytes(), policy=default)
    assert str(ack["Subject"]).startswith("[CID-1000]")
    assert str(ack["In-Reply-To"]) == f"<{mid}>"


@contextmanager
def sqlite_locked(path: Path) -> Iterator[Callable[[], None]]:
    """Another process's write lock on the database file, as a long backup would hold.
    Yields a function that lets go early."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn.close  # closing rolls the open transaction back
    finally:
        conn.close()


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
            assert daemon.run(config) == daemon.EX_UNAVAILABLE
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    assert "event=listen_failed" in errors[0].getMessage()
    assert config.smtp.listen in errors[0].getMessage()
