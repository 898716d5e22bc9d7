"""IMAP intake against a real Dovecot: store, then move; IDLE; failures; UIDVALIDITY."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from imapclient.exceptions import LoginError
from sqlmodel import select

from mailgate.config import DatabaseConfig, ImapConfig
from mailgate.flows.pipeline import process
from mailgate.intake.imap import ImapIntake
from mailgate.outbound.context import Context
from mailgate.service.app import build_context
from mailgate.store import spool
from mailgate.store.database import StoreUnavailable
from mailgate.store.models import ImapState, Intake, Ticket
from tests.conftest import Clock, make_config
from tests.daemon_harness import count, daemon_config, running
from tests.dovecot import BASIC_HOST, PLAIN_HOST, Dovecot, ImapUser, dovecot, imap_user
from tests.helpers import poll, sqlite_locked
from tests.mails import make_mail

__all__ = ["dovecot", "imap_user"]  # fixtures, used by name

PROCESSED = "Processed"


def mailbox_for(user: ImapUser, **overrides: Any) -> ImapConfig:
    base = ImapConfig(
        name="support",
        host=PLAIN_HOST,
        port=user.server.port,
        security="none",
        username=user.name,
        password=user.password,
        processed_folder=PROCESSED,
        poll_interval=3600.0,  # IDLE must do the work; polling this slowly would fail the test
    )
    return dataclasses.replace(base, **overrides)


def rows(ctx: Context, model: Any) -> list[Any]:
    with ctx.store.session() as session:
        return list(session.exec(select(model)).all())


def process_all(ctx: Context, ids: list[int]) -> None:
    for intake_id in ids:
        process(ctx, intake_id)


@contextmanager
def serving(intake: ImapIntake) -> Iterator[Callable[[], float]]:
    """intake.run() on an event loop in a thread; yields a stop function that returns how
    long run() took to return once told."""
    started = threading.Event()
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal loop, stop
        loop, stop = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await intake.run(stop)

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="imap-test-loop")
    thread.start()
    assert started.wait(5)

    def halt() -> float:
        assert loop is not None and stop is not None
        began = time.monotonic()
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        assert not thread.is_alive(), "run() did not return after stop"
        return time.monotonic() - began

    try:
        yield halt
    finally:
        if thread.is_alive():
            halt()


class Recorder:
    """on_stored for the tests: thread-safe, remembers the ids in order."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, intake_id: int) -> None:
        with self.lock:
            self.ids.append(intake_id)

    def snapshot(self) -> list[int]:
        with self.lock:
            return list(self.ids)


def test_appended_mail_becomes_tickets_and_moves(ctx: Context, imap_user: ImapUser) -> None:
    raws = [make_mail(subject=f"Request {n}") for n in range(3)]
    imap_user.append(*raws)
    stored = Recorder()
    intake = ImapIntake(ctx, mailbox_for(imap_user), stored)

    assert intake.poll_once() == 3
    assert imap_user.folder("INBOX") == {}
    moved = imap_user.folder(PROCESSED)
    assert len(moved) == 3
    assert all(b"\\Seen" in flags for flags in moved.values())  # fetched, so read
    process_all(ctx, stored.snapshot())
    tickets = rows(ctx, Ticket)
    assert sorted(t.subject for t in tickets) == ["Request 0", "Request 1", "Request 2"]
    assert {t.source for t in tickets} == {"imap:support"}
    (state,) = rows(ctx, ImapState)
    assert (state.mailbox, state.uidvalidity) == ("support", imap_user.uidvalidity())
    assert state.last_uid == 3
    assert intake.poll_once() == 0


def test_a_large_mail_is_fetched_without_copies_of_it(
    sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    files = (("logs.tar.gz", "application/gzip", os.urandom(3 << 20)),)
    raw = make_mail(subject="Logs", attachments=files)
    imap_user.append(raw)
    intake = ImapIntake(sqlite_ctx, mailbox_for(imap_user), Recorder())
    tracemalloc.start()
    try:
        assert intake.poll_once() == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The mail itself, and pieces of it for the digests; imaplib's debug output once made
    # its repr as well (four times its size).
    assert peak < 2 * len(raw)
    with sqlite_ctx.store.session() as session:
        assert spool.stored_raw(session, rows(sqlite_ctx, Intake)[0].id) == raw


def test_large_folder_is_read_in_batches(sqlite_ctx: Context, imap_user: ImapUser) -> None:
    imap_user.append(*(make_mail(subject=f"Bulk {n}") for n in range(60)))
    intake = ImapIntake(sqlite_ctx, mailbox_for(imap_user), Recorder())
    assert intake.poll_once() == 60
    assert len(imap_user.folder(PROCESSED)) == 60
    assert len(rows(sqlite_ctx, Intake)) == 60


def test_idle_picks_up_new_mail_within_seconds(sqlite_ctx: Context, imap_user: ImapUser) -> None:
    stored = Recorder()
    imap_user.append(make_mail(subject="Before"))
    with serving(ImapIntake(sqlite_ctx, mailbox_for(imap_user), stored)) as halt:
        poll(lambda: len(stored.snapshot()) == 1, what="the first mail")
        poll(lambda: imap_user.folder("INBOX") == {}, what="the first move")
        appended = time.monotonic()
        imap_user.append(make_mail(subject="While idling"))
        poll(lambda: len(stored.snapshot()) == 2, timeout=5, what="the mail IDLE announced")
        assert time.monotonic() - appended < 2.5
        assert halt() < 3
    poll(lambda: len(imap_user.folder(PROCESSED)) == 2, what="both moved")


def test_connection_lost_while_idling_is_picked_up_again(
    sqlite_ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.intake.imap")
    stored = Recorder()
    imap_user.append(make_mail(subject="Before"))
    with serving(ImapIntake(sqlite_ctx, mailbox_for(imap_user), stored)):
        poll(lambda: imap_user.folder("INBOX") == {}, what="the first move")
        imap_user.kick()
        poll(lambda: "imap_connection_failing" in caplog.text, what="the lost connection")
        imap_user.append(make_mail(subject="After"))
        poll(lambda: len(stored.snapshot()) == 2, what="the mail after reconnecting")
    assert caplog.text.count("event=imap_connection_failing") == 1
    assert caplog.text.count("event=imap_connection_recovered") == 1


def test_processed_folder_deleted_while_serving_is_created_again(
    sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    stored = Recorder()
    imap_user.append(make_mail(subject="Before"))
    with serving(ImapIntake(sqlite_ctx, mailbox_for(imap_user), stored)):
        poll(lambda: len(imap_user.folder(PROCESSED)) == 1, what="the first move")
        with imap_user.client() as client:
            client.delete_folder(PROCESSED)  # someone tidies up the mailbox
        imap_user.append(make_mail(subject="After"))
        poll(lambda: len(imap_user.folder(PROCESSED)) == 1, timeout=20, what="the second move")
        assert imap_user.folder("INBOX") == {}
    assert len(stored.snapshot()) == 2  # each stored once; the second moved after reconnecting


def test_without_idle_and_move_it_polls_and_copies(
    sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    """127.0.0.2 offers neither IDLE nor MOVE: poll, COPY + \\Deleted + EXPUNGE, and create
    the processed folder on the way."""
    stored = Recorder()
    mailbox = mailbox_for(imap_user, host=BASIC_HOST, poll_interval=0.2)
    with serving(ImapIntake(sqlite_ctx, mailbox, stored)):
        imap_user.append(make_mail(subject="Polled"))
        poll(lambda: len(stored.snapshot()) == 1, what="the polled mail")
        poll(lambda: imap_user.folder("INBOX") == {}, what="the expunge")
    assert len(imap_user.folder(PROCESSED)) == 1


def test_mail_that_fails_to_store_stays_in_the_inbox(tmp_path: Path, imap_user: ImapUser) -> None:
    database = DatabaseConfig(url=f"sqlite:///{tmp_path}/mailgate.db", busy_timeout=0.2)
    ctx = dataclasses.replace(
        build_context(make_config(tmp_path, database=database)), clock=Clock()
    )
    imap_user.append(make_mail(subject="Unlucky"))
    intake = ImapIntake(ctx, mailbox_for(imap_user), Recorder())
    with sqlite_locked(tmp_path / "mailgate.db"), pytest.raises(StoreUnavailable):
        intake.poll_once()
    inbox = imap_user.folder("INBOX")
    assert len(inbox) == 1
    assert b"\\Seen" not in next(iter(inbox.values()))  # read with PEEK: looks untouched
    assert rows(ctx, Intake) == []
    assert imap_user.folder(PROCESSED) == {}
    # The database is back: the next round takes it.
    assert intake.poll_once() == 1
    assert imap_user.folder("INBOX") == {}
    ctx.store.dispose()


def test_lost_connection_mid_batch_creates_no_duplicate(
    sqlite_ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailgate.intake.imap")
    imap_user.append(*(make_mail(subject=f"Batch {n}") for n in range(5)))
    stored = Recorder()

    def kick_on_first(intake_id: int) -> None:
        if not stored.snapshot():
            imap_user.kick()  # the server goes away between storing and moving
        stored(intake_id)

    with serving(ImapIntake(sqlite_ctx, mailbox_for(imap_user), kick_on_first)):
        poll(lambda: len(imap_user.folder(PROCESSED)) == 5, what="the moves after reconnecting")
    assert imap_user.folder("INBOX") == {}
    assert len(rows(sqlite_ctx, Intake)) == 5
    process_all(sqlite_ctx, stored.snapshot())
    assert len(rows(sqlite_ctx, Ticket)) == 5
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split()[0] for r in warnings] == ["event=imap_connection_failing"]
    assert any("event=imap_connection_recovered" in r.getMessage() for r in caplog.records)


def test_uidvalidity_change_creates_no_duplicate(
    sqlite_ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    imap_user.append(make_mail(subject="First"), make_mail(subject="Second"))
    stored = Recorder()

    def kick_on_first(intake_id: int) -> None:
        if not stored.snapshot():
            imap_user.kick()  # stored, but the move will fail: both stay in INBOX
        stored(intake_id)

    intake = ImapIntake(sqlite_ctx, mailbox_for(imap_user), kick_on_first)
    with pytest.raises(Exception):  # noqa: B017  (whatever a dropped connection raises)
        intake.poll_once()
    assert len(imap_user.folder("INBOX")) == 2
    process_all(sqlite_ctx, stored.snapshot())
    assert len(rows(sqlite_ctx, Ticket)) == 2

    old = imap_user.uidvalidity()
    imap_user.set_uidvalidity(old + 1000)
    assert intake.poll_once() == 0  # every message read again, each one already stored
    assert imap_user.folder("INBOX") == {}
    assert len(imap_user.folder(PROCESSED)) == 2
    assert len(rows(sqlite_ctx, Intake)) == 2
    assert len(rows(sqlite_ctx, Ticket)) == 2
    (state,) = rows(sqlite_ctx, ImapState)
    assert state.uidvalidity == old + 1000
    assert any("event=imap_uidvalidity_changed" in r.getMessage() for r in caplog.records)


def test_same_mail_under_new_uidvalidity_with_new_bytes_makes_no_second_ticket(
    sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    """A server rebuilt from backup may hand out the message with other trace headers."""
    raw = make_mail(subject="Restored")
    imap_user.append(raw)
    stored = Recorder()
    intake = ImapIntake(sqlite_ctx, mailbox_for(imap_user), stored)
    assert intake.poll_once() == 1
    imap_user.set_uidvalidity(imap_user.uidvalidity() + 7)
    imap_user.append(b"Received: from restore.example by imap.example\r\n" + raw)
    assert intake.poll_once() == 1  # other bytes: stored again
    process_all(sqlite_ctx, stored.snapshot())
    assert len(rows(sqlite_ctx, Ticket)) == 1


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls(sqlite_ctx: Context, imap_user: ImapUser, dovecot: Dovecot, security: str) -> None:
    port = dovecot.tls_port if security == "ssl" else dovecot.port
    mailbox = mailbox_for(imap_user, security=security, port=port, tls_ca_file=str(dovecot.cert))
    imap_user.append(make_mail(subject="Encrypted"))
    assert ImapIntake(sqlite_ctx, mailbox, Recorder()).poll_once() == 1
    untrusted = dataclasses.replace(mailbox, tls_ca_file="")
    imap_user.append(make_mail(subject="Untrusted"))
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        ImapIntake(sqlite_ctx, untrusted, Recorder()).poll_once()
    unverified = dataclasses.replace(mailbox, tls_ca_file="", tls_verify=False)
    assert ImapIntake(sqlite_ctx, unverified, Recorder()).poll_once() == 1


def test_password_file_and_wrong_password(
    tmp_path: Path, sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    secret = tmp_path / "imap.secret"
    secret.write_text(imap_user.password + "\n")
    imap_user.append(make_mail())
    from_file = mailbox_for(imap_user, password="", password_file=str(secret))
    assert ImapIntake(sqlite_ctx, from_file, Recorder()).poll_once() == 1
    wrong = mailbox_for(imap_user, password="not-the-password")
    with pytest.raises(LoginError):
        ImapIntake(sqlite_ctx, wrong, Recorder()).poll_once()


def test_refused_login_is_logged_once_and_stop_still_works(
    sqlite_ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailgate.intake.imap")
    mailbox = mailbox_for(imap_user, password="not-the-password")
    with serving(ImapIntake(sqlite_ctx, mailbox, Recorder())) as halt:
        poll(
            lambda: sum("imap_connection_failing" in r.getMessage() for r in caplog.records) >= 2,
            what="a second attempt",
        )
        assert halt() < 3
    failing = [r for r in caplog.records if "imap_connection_failing" in r.getMessage()]
    assert [r.levelno for r in failing][:2] == [logging.WARNING, logging.DEBUG]


def test_daemon_turns_mailbox_mail_into_acknowledged_tickets(
    tmp_path: Path, imap_user: ImapUser
) -> None:
    config = dataclasses.replace(daemon_config(tmp_path), imap=[mailbox_for(imap_user)])
    with running(config) as mg:
        imap_user.append(make_mail(subject="Drucker druckt nicht"))
        poll(lambda: count(mg.ctx, Ticket) == 1, what="a ticket from the mailbox")
        poll(lambda: list((tmp_path / "sent").glob("*.eml")), what="the acknowledgement")
        poll(lambda: len(imap_user.folder(PROCESSED)) == 1, what="the move")
        assert imap_user.folder("INBOX") == {}
    ctx = build_context(config)
    try:
        (ticket,) = rows(ctx, Ticket)
    finally:
        ctx.store.dispose()
    assert (ticket.subject, ticket.source) == ("Drucker druckt nicht", "imap:support")


def test_lag_is_the_age_of_the_oldest_waiting_message(
    sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    with imap_user.client() as client:
        client.append("INBOX", make_mail(subject="old"), msg_time=two_hours_ago)
    lags: list[tuple[str, float]] = []
    intake = ImapIntake(
        sqlite_ctx, mailbox_for(imap_user), Recorder(), lambda box, age: lags.append((box, age))
    )
    intake.poll_once()
    intake.poll_once()
    (box, age), (_, after) = lags
    assert box == "support"
    assert 7100 < age < 7300
    assert after == 0.0  # nothing waits once the mail is stored and moved


def over(security: str, user: ImapUser, dovecot: Dovecot) -> ImapConfig:
    """The test's mailbox, in plain text or over TLS (imaplib then reads through ssl)."""
    if security == "none":
        return mailbox_for(user)
    return mailbox_for(user, security="ssl", port=dovecot.tls_port, tls_ca_file=str(dovecot.cert))


@pytest.mark.parametrize("security", ["none", "ssl"])
def test_mail_arriving_just_before_idle_is_not_missed(
    sqlite_ctx: Context, imap_user: ImapUser, dovecot: Dovecot, security: str
) -> None:
    intake = ImapIntake(sqlite_ctx, over(security, imap_user, dovecot), Recorder())
    client = intake._connect()
    try:
        client.select_folder("INBOX")
        client.search("UNDELETED")  # the folder as the last drain saw it: empty
        imap_user.append(make_mail(subject="between search and IDLE"))
        started = time.monotonic()
        intake._idle(client, threading.Event())
        # Back at once to drain, not after the renewal interval (an hour in this test).
        assert time.monotonic() - started < 5
    finally:
        client.logout()


@pytest.mark.parametrize("security", ["none", "ssl"])
def test_an_idle_mailbox_waits_in_idle_rather_than_asking_again(
    sqlite_ctx: Context, imap_user: ImapUser, dovecot: Dovecot, security: str
) -> None:
    """Once drained, the intake waits for the server's news. It once took the EXISTS of its
    own SELECT for news, and drained the empty folder again and again: a core's worth of CPU
    and a stream of commands to the server, for as long as nothing came in."""
    imap_user.append(make_mail(subject="Before"))
    stored = Recorder()
    intake = ImapIntake(sqlite_ctx, over(security, imap_user, dovecot), stored)
    drains: list[float] = []
    drain = intake._drain

    def counted(client: Any) -> int:
        drains.append(time.monotonic())
        return drain(client)

    intake._drain = counted  # type: ignore[method-assign]
    with serving(intake):
        poll(lambda: imap_user.folder("INBOX") == {}, what="the first move")
        settled = len(drains)
        time.sleep(1.5)
        quiet = len(drains) - settled
        imap_user.append(make_mail(subject="While idling"))
        poll(lambda: len(stored.snapshot()) == 2, timeout=5, what="the mail IDLE announced")
    assert quiet <= 1  # at most the drain that found the folder empty
