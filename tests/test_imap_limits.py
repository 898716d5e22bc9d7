"""IMAP intake against a real Dovecot: mail over the size limit, and fetches bounded by bytes."""

from __future__ import annotations

import dataclasses
import logging
import os
import tracemalloc
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import pytest
from imapclient import IMAPClient

from mailgate.config import ConfigError, SmtpConfig, parse_config
from mailgate.intake.imap import ImapIntake
from mailgate.intake.imap_folder import HEAD_BYTES, batches
from mailgate.outbound.context import Context
from mailgate.store import spool
from mailgate.store.models import IGNORED, Intake, Ticket
from tests.daemon_harness import count, daemon_config, running
from tests.dovecot import ImapUser, dovecot, imap_user
from tests.helpers import outbox, parsed, poll
from tests.mails import make_mail
from tests.test_imap import PROCESSED, Recorder, mailbox_for, process_all, rows

__all__ = ["dovecot", "imap_user"]  # fixtures, used by name

ASIDE = "Too large"
MB = 1 << 20


def mail_of_size(size: int, subject: str, sender: str = "Alice <alice@acme.example>") -> bytes:
    """A mail with an attachment that makes it about `size` bytes (base64 adds a third)."""
    payload = os.urandom(size * 3 // 4)
    files = (("dump.bin", "application/octet-stream", payload),)
    return make_mail(subject=subject, sender=sender, attachments=files)


def sent_mails(directory: Path) -> list[Message]:
    return [parsed(p.read_bytes()) for p in sorted(directory.glob("*.eml"))]


def too_large_notes(directory: Path) -> list[Message]:
    return [m for m in sent_mails(directory) if m["Subject"].startswith("Your message was too")]


def copy_back(user: ImapUser, folder: str) -> None:
    """Someone drags what was set aside back into the inbox."""
    with user.client() as client:
        client.select_folder(folder)
        client.copy(client.search("ALL"), "INBOX")


def test_mail_over_the_limit_is_answered_once_set_aside_and_makes_no_ticket(
    tmp_path: Path, imap_user: ImapUser
) -> None:
    big = mail_of_size(30 * MB, "Crash dump")
    config = daemon_config(tmp_path, max_size=10 * MB)
    config = dataclasses.replace(config, imap=[mailbox_for(imap_user)])
    with running(config) as mg:
        imap_user.append(big, make_mail(subject="Printer broken"))
        poll(lambda: len(imap_user.folder(PROCESSED)) == 1, what="the small mail moved")
        poll(lambda: len(imap_user.folder(ASIDE)) == 1, what="the large one set aside")
        assert imap_user.folder("INBOX") == {}
        (note,) = poll(lambda: too_large_notes(tmp_path / "sent"), what="the too-large note")
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the small mail's ticket")

        # Put back into the inbox, it is set aside again, and its sender hears nothing more.
        copy_back(imap_user, ASIDE)
        poll(lambda: len(imap_user.folder(ASIDE)) == 2, what="the copy set aside again")
        assert imap_user.folder("INBOX") == {}
    assert note["To"] == "alice@acme.example"
    assert note["Subject"] == "Your message was too large: Crash dump"
    assert note["Auto-Submitted"] == "auto-replied"
    assert note["In-Reply-To"] == parsed(big)["Message-ID"]
    text = note.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Crash dump" in text and "10.5 MB" in text  # the limit, as filesizeformat says it
    assert len(too_large_notes(tmp_path / "sent")) == 1
    with running(config) as mg:
        (ticket,) = rows(mg.ctx, Ticket)
        assert ticket.subject == "Printer broken"
        withheld = [i for i in rows(mg.ctx, Intake) if i.status == IGNORED]
    (intake,) = withheld  # the copy was the same message: stored once
    assert intake.size > 30 * MB and intake.subject == "Crash dump"
    assert "too large" in intake.reason


# Our MTA's verdict that a mail is not Alice's: a note would tell her of a mail she never sent.
FORGED = b"Authentication-Results: mx.example.com; dmarc=fail header.from=acme.example\r\n"


@pytest.mark.parametrize(
    "big",
    [
        pytest.param(
            lambda: mail_of_size(3 * MB, "Delivery Status Notification", "MAILER-DAEMON@r.example"),
            id="automatic",
        ),
        pytest.param(lambda: FORGED + mail_of_size(3 * MB, "Big"), id="forged"),
    ],
)
def test_mail_over_the_limit_nobody_may_answer_is_set_aside_without_a_note(
    tmp_path: Path, imap_user: ImapUser, big: Callable[[], bytes]
) -> None:
    config = daemon_config(tmp_path, max_size=1 * MB)
    config = dataclasses.replace(config, imap=[mailbox_for(imap_user)])
    with running(config) as mg:
        imap_user.append(big(), make_mail(subject="After it"))
        poll(lambda: len(imap_user.folder(ASIDE)) == 1, what="the large one set aside")
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the small mail's ticket")
        poll(lambda: sent_mails(tmp_path / "sent"), what="the acknowledgement")
    assert too_large_notes(tmp_path / "sent") == []


def test_large_mail_stored_but_not_moved_is_set_aside_later(
    ctx: Context, imap_user: ImapUser
) -> None:
    smtp = dataclasses.replace(ctx.config.smtp, max_message_size=1 * MB)
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, smtp=smtp))
    imap_user.append(mail_of_size(2 * MB, "Big"), make_mail(subject="Small"))
    stored = Recorder()

    def kick_on_first(intake_id: int) -> None:
        if not stored.snapshot():
            imap_user.kick()  # stored, but the move will fail: it stays in INBOX
        stored(intake_id)

    intake = ImapIntake(ctx, mailbox_for(imap_user), kick_on_first)
    with pytest.raises(Exception):  # noqa: B017  (whatever a dropped connection raises)
        intake.poll_once()
    assert len(imap_user.folder("INBOX")) == 2
    assert intake.poll_once() == 1  # the small one
    assert len(imap_user.folder(ASIDE)) == 1
    assert len(imap_user.folder(PROCESSED)) == 1
    process_all(ctx, stored.snapshot())
    (ticket,) = rows(ctx, Ticket)
    assert ticket.subject == "Small"
    notes = [row for row in outbox(ctx) if row.template == "message_too_large"]
    assert [(row.to_addrs, row.subject) for row in notes] == [
        ("alice@acme.example", "Your message was too large: Big")
    ]


def test_a_mailbox_of_large_mails_is_fetched_a_few_at_a_time(
    sqlite_ctx: Context, imap_user: ImapUser
) -> None:
    sizes = []
    with imap_user.client() as client:
        for n in range(10):
            raw = mail_of_size(8 * MB, f"Scan {n}")
            sizes.append(len(raw))
            client.append("INBOX", raw)
            del raw
    intake = ImapIntake(sqlite_ctx, mailbox_for(imap_user), Recorder())
    tracemalloc.start()
    try:
        assert intake.poll_once() == 10
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(imap_user.folder(PROCESSED)) == 10
    # A batch's worth (32 MiB) and one mail more, not the whole folder (80 MB).
    assert peak < 32 * MB + 2 * max(sizes), f"peak {peak / MB:.0f} MiB"


@pytest.mark.parametrize("folder", ["INBOX", ""])
def test_set_aside_folder_must_be_set_and_differ_from_the_folder_read(folder: str) -> None:
    text = f'[[imap]]\nname = "support"\noversize_folder = "{folder}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.toml")
    expected = "f.toml: imap.support.oversize_folder: must be set and differ from folder"
    assert str(caught.value) == expected


def test_server_sizes_are_read_before_any_body(sqlite_ctx: Context, imap_user: ImapUser) -> None:
    """Only the header of a mail over the limit crosses the wire."""
    smtp: SmtpConfig = dataclasses.replace(sqlite_ctx.config.smtp, max_message_size=1 * MB)
    ctx = dataclasses.replace(sqlite_ctx, config=dataclasses.replace(sqlite_ctx.config, smtp=smtp))
    imap_user.append(mail_of_size(20 * MB, "Huge"))
    intake = ImapIntake(ctx, mailbox_for(imap_user), Recorder())
    tracemalloc.start()
    try:
        intake.poll_once()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB, f"peak {peak / MB:.0f} MiB"
    assert len(imap_user.folder(ASIDE)) == 1
    client: IMAPClient
    with imap_user.client() as client:
        client.select_folder(ASIDE, readonly=True)
        (uid,) = client.search("ALL")
        # Never taken: whoever looks into the folder sees it unread.
        assert b"\\Seen" not in client.get_flags([uid])[uid]


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([10, 10, 10, 10], [[1, 2, 3], [4]]),  # 30 fits the budget of 32, 40 does not
        ([40, 5], [[1], [2]]),  # one message at least, however large
        ([5, 200, 5, 5], [[1], [2], [3, 4]]),  # over the limit: a batch of its own
        ([1] * 7, [[1, 2, 3], [4, 5, 6], [7]]),  # and at most `count` messages
    ],
)
def test_batches_are_bounded_by_bytes_and_count(
    sizes: list[int], expected: list[list[int]]
) -> None:
    uids = list(range(1, len(sizes) + 1))
    by_uid = dict(zip(uids, sizes, strict=True))
    assert list(batches(uids, by_uid, limit=100, count=3, budget=32)) == expected


def test_only_the_start_of_a_huge_header_is_read(sqlite_ctx: Context, imap_user: ImapUser) -> None:
    """An over-size mail whose header block alone is large: what is stored stays small."""
    smtp = dataclasses.replace(sqlite_ctx.config.smtp, max_message_size=1 * MB)
    ctx = dataclasses.replace(sqlite_ctx, config=dataclasses.replace(sqlite_ctx.config, smtp=smtp))
    filler = {f"X-Filler-{n}": "x" * 60_000 for n in range(40)}  # 2.4 MB of header
    imap_user.append(make_mail(subject="Headers", headers=filler))
    stored = Recorder()
    assert ImapIntake(ctx, mailbox_for(imap_user), stored).poll_once() == 1
    (intake_id,) = stored.snapshot()
    with ctx.store.session() as session:
        assert spool.stored_sizes(session, [intake_id])[intake_id] <= HEAD_BYTES
    process_all(ctx, [intake_id])
    notes = [row for row in outbox(ctx) if row.template == "message_too_large"]
    assert [row.subject for row in notes] == ["Your message was too large: Headers"]
    assert rows(ctx, Ticket) == []


def test_mail_that_cannot_be_set_aside_is_flagged_and_holds_nothing_up(
    sqlite_ctx: Context, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    smtp = dataclasses.replace(sqlite_ctx.config.smtp, max_message_size=1 * MB)
    ctx = dataclasses.replace(sqlite_ctx, config=dataclasses.replace(sqlite_ctx.config, smtp=smtp))
    caplog.set_level(logging.DEBUG, logger="mailgate.intake.imap")
    box = mailbox_for(imap_user, oversize_folder="~aside")  # a name Dovecot refuses
    imap_user.append(mail_of_size(2 * MB, "Big"), make_mail(subject="Small"))
    intake = ImapIntake(ctx, box, Recorder())
    assert intake.poll_once() == 2
    imap_user.append(make_mail(subject="Later"))
    assert intake.poll_once() == 1
    assert len(imap_user.folder(PROCESSED)) == 2
    (flags,) = imap_user.folder("INBOX").values()
    assert b"\\Flagged" in flags and b"\\Seen" not in flags  # for a person to look at
    failing = [r for r in caplog.records if "event=imap_set_aside_failing" in r.getMessage()]
    assert [r.levelno for r in failing] == [logging.WARNING, logging.DEBUG]
