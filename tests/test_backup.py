"""`mailgate db backup` while mail pours in, and `db restore` into an empty desk: every
ticket, article and attachment comes back byte for byte, and a damaged backup restores nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailgate.config import ProcessingConfig
from mailgate.service.app import build_context
from mailgate.store.models import Ticket
from mailgate.store.spool import accept
from tests.daemon_harness import (
    CUSTOMER,
    SUPPORT,
    connect,
    count,
    daemon_config,
    running,
    write_toml,
)
from tests.helpers import poll, sqlite_locked, tickets
from tests.mails import make_mail
from tests.test_cli import mailgate, mailgate_process

# The same logo in every mail: its content is stored once, and backed up once.
LOGO = os.urandom(3000)
# Rows a backup must bring back as the source holds them (intake rows change as mail is
# processed; their bytes, in intake_raw, never do).
UNCHANGING = ("ticket", "article", "attachment", "blob", "intake_raw")


def rows(database: Path, table: str) -> dict[Any, tuple[Any, ...]]:
    """A table's rows by their first column (the id, or the blob's digest)."""
    with sqlite3.connect(database) as conn:
        return {row[0]: row for row in conn.execute(f"SELECT * FROM {table}")}


def column(database: Path, query: str) -> set[Any]:
    with sqlite3.connect(database) as conn:
        return {value for (value,) in conn.execute(query)}


def send_until(
    address: tuple[str, int], sender: int, stop: threading.Event, backing_up: threading.Event
) -> tuple[int, int]:
    """One SMTP client sending mails with attachments, a few a second, until told to stop;
    how many it sent, and how many of them were taken while the backup was running."""
    sent = during = 0
    with connect(address) as client:
        while not stop.is_set():
            # Sizes vary but stay small: under a loaded machine the backup starts late, and
            # attachments growing with every mail made that burst's volume grow squared.
            report = os.urandom(2000 + 500 * (sent % 16))
            mail = make_mail(
                subject=f"Burst {sender}-{sent}",
                sender=f"c{sender}@shop{sender}.example",
                attachments=(
                    (f"report-{sender}-{sent}.bin", "application/octet-stream", report),
                    ("logo.png", "image/png", LOGO),
                ),
            )
            client.sendmail(f"c{sender}@shop{sender}.example", [SUPPORT], mail)
            sent += 1
            during += backing_up.is_set()
            time.sleep(0.05)
    return sent, during


def stop_after_backup_starts(
    backups: Path, backing_up: threading.Event, stop: threading.Event
) -> None:
    """The backup writes under a temporary name beside its directory: once that is there,
    mail goes on a while longer, then stops (or when the backup has ended)."""
    while not stop.is_set() and not list(backups.glob(".*.partial-*")):
        time.sleep(0.01)
    backing_up.set()
    stop.wait(1.0)
    stop.set()


def test_a_backup_taken_during_a_burst_restores_every_ticket_byte_for_byte(
    tmp_path: Path,
) -> None:
    live = daemon_config(tmp_path / "live")
    live_toml = write_toml(live)
    backup = tmp_path / "backups" / "monday"
    backup.parent.mkdir()
    stop, backing_up = threading.Event(), threading.Event()
    with running(live) as mg:
        sent: list[tuple[int, int]] = []
        senders = [
            threading.Thread(
                target=lambda n=n: sent.append(send_until(mg.address, n, stop, backing_up))
            )
            for n in range(4)
        ]
        watch = threading.Thread(
            target=stop_after_backup_starts, args=(backup.parent, backing_up, stop)
        )
        for thread in senders:
            thread.start()
        try:
            poll(lambda: count(mg.ctx, Ticket) >= 10, timeout=30, what="tickets from the burst")
            watch.start()
            made = mailgate_process("db", "backup", str(backup), config=live_toml, stdin=b"")
        finally:
            stop.set()
            for thread in senders:
                thread.join(30)
            if watch.is_alive():
                watch.join(30)
    assert made.returncode == 0, made.stderr
    assert len(sent) == 4
    assert sum(during for _sent, during in sent) >= 4  # mail kept coming in meanwhile
    manifest = json.loads((backup / "manifest.json").read_text())
    assert (
        f"to {backup}" in made.stdout and f"{manifest['counts']['ticket']} tickets" in made.stdout
    )
    assert not list(backup.parent.glob(".*"))  # no half-done backup left beside it

    restored = daemon_config(tmp_path / "restored")
    restored_toml = write_toml(restored)
    result = mailgate("db", "restore", str(backup), config=restored_toml)
    assert result.returncode == 0, result.stderr
    assert f"restored {manifest['counts']['ticket']} tickets" in result.stdout

    source_db = tmp_path / "live" / "mailgate.db"
    copy_db = tmp_path / "restored" / "mailgate.db"
    for table in UNCHANGING:
        copied, source = rows(copy_db, table), rows(source_db, table)
        assert copied, f"no {table} rows in the backup"
        assert {key: source.get(key) for key in copied} == copied, table
        assert len(copied) == manifest["counts"][table], table
    # Every attachment's content, from the restored data directory, is what was sent.
    data = tmp_path / "restored" / "data"
    for digest, _size, path in rows(copy_db, "blob").values():
        content = (data / path).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest
        assert content == (tmp_path / "live" / "data" / path).read_bytes()
    assert (data / "secret.key").read_bytes() == (tmp_path / "live/data/secret.key").read_bytes()
    # Nothing the restored rows refer to is missing.
    for refers, referred in (
        ("SELECT sha256 FROM attachment", "SELECT sha256 FROM blob"),
        ("SELECT article_id FROM attachment", "SELECT id FROM article"),
        ("SELECT ticket_id FROM article", "SELECT id FROM ticket"),
        ("SELECT intake_id FROM article WHERE intake_id IS NOT NULL", "SELECT id FROM intake"),
    ):
        assert column(copy_db, refers) <= column(copy_db, referred), refers

    # The restored desk works: the commands read it, and the daemon takes mail on it.
    listed = json.loads(
        mailgate("tickets", "list", "--format", "json", config=restored_toml).stdout
    )
    assert len(listed) == manifest["counts"]["ticket"]
    numbers = sorted(ticket["number"] for ticket in listed)
    first = mailgate("tickets", "show", listed[0]["cid"], "--format", "json", config=live_toml)
    again = mailgate("tickets", "show", listed[0]["cid"], "--format", "json", config=restored_toml)
    assert json.loads(again.stdout)["articles"] == json.loads(first.stdout)["articles"]
    with running(restored) as mg:
        with connect(mg.address) as client:
            client.sendmail(CUSTOMER, [SUPPORT], make_mail(subject="After the restore"))
        poll(
            lambda: any(t.subject == "After the restore" for t in tickets(mg.ctx)),
            timeout=30,
            what="a ticket on the restored desk",
        )
        after = next(t for t in tickets(mg.ctx) if t.subject == "After the restore")
    assert after.number > numbers[-1]


@pytest.fixture
def small_backup(tmp_path: Path) -> tuple[Path, Path]:
    """A desk of two mails with attachments, backed up; its configuration and the backup."""
    live = write_toml(daemon_config(tmp_path / "live"))
    for n in range(2):
        mail = make_mail(
            subject=f"Invoice {n}",
            attachments=((f"invoice-{n}.pdf", "application/pdf", os.urandom(4000)),),
        )
        (tmp_path / f"in-{n}.eml").write_bytes(mail)
        assert mailgate("ingest", str(tmp_path / f"in-{n}.eml"), config=live).returncode == 0
    backup = tmp_path / "backup"
    result = mailgate("db", "backup", str(backup), config=live)
    assert result.returncode == 0, result.stderr
    return live, backup


def test_restore_refuses_a_data_directory_or_database_that_is_not_empty(
    tmp_path: Path, small_backup: tuple[Path, Path]
) -> None:
    _live, backup = small_backup
    target = write_toml(daemon_config(tmp_path / "other"))
    (tmp_path / "other" / "data").mkdir(parents=True)
    (tmp_path / "other" / "data" / "notes.txt").write_text("someone's files")
    result = mailgate("db", "restore", str(backup), config=target)
    assert result.returncode == 73
    assert f"{tmp_path / 'other' / 'data'} is not empty" in result.stderr
    assert "notes.txt" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "other" / "mailgate.db").exists()

    (tmp_path / "other" / "data" / "notes.txt").unlink()
    assert mailgate("agents", "list", config=target).returncode == 78  # no database yet
    assert (
        mailgate("agents", "add", "anna@example.com", "--name", "Anna", config=target).returncode
        == 0
    )
    result = mailgate("db", "restore", str(backup), config=target)
    assert result.returncode == 73
    assert f"a database is already at {tmp_path / 'other' / 'mailgate.db'}" in result.stderr
    agents = mailgate("agents", "list", "--format", "json", config=target)
    assert "anna@example.com" in agents.stdout  # what was there stays as it was


def test_a_damaged_file_in_the_backup_is_named_and_nothing_is_restored(
    tmp_path: Path, small_backup: tuple[Path, Path]
) -> None:
    _live, backup = small_backup
    manifest = json.loads((backup / "manifest.json").read_text())
    blob = next(f["path"] for f in manifest["files"] if f["path"].startswith("data/blobs/"))
    damaged = bytearray((backup / blob).read_bytes())
    damaged[100] ^= 0xFF
    (backup / blob).write_bytes(bytes(damaged))
    target = write_toml(daemon_config(tmp_path / "other"))
    result = mailgate("db", "restore", str(backup), config=target)
    assert result.returncode == 65
    assert f"{backup / blob}: its checksum does not match the manifest" in result.stderr
    assert "nothing was restored" in result.stderr
    assert not (tmp_path / "other" / "mailgate.db").exists()
    assert not (tmp_path / "other" / "data").exists()

    (backup / "mailgate.db").unlink()
    result = mailgate("db", "restore", str(backup), config=target)
    assert result.returncode == 65
    assert f"{backup / 'mailgate.db'}: missing" in result.stderr


def test_a_backup_never_goes_into_a_directory_that_holds_something(
    tmp_path: Path, small_backup: tuple[Path, Path]
) -> None:
    live, backup = small_backup
    before = sorted(p.name for p in backup.iterdir())
    result = mailgate("db", "backup", str(backup), config=live)
    assert result.returncode == 73
    assert f"{backup} is not empty" in result.stderr
    assert sorted(p.name for p in backup.iterdir()) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mailgate("db", "backup", str(empty), config=live).returncode == 0
    assert (empty / "manifest.json").is_file()


def test_a_backup_that_fails_leaves_nothing_under_its_name(
    tmp_path: Path, small_backup: tuple[Path, Path]
) -> None:
    live, _backup = small_backup
    lost = next(p for p in (tmp_path / "live" / "data" / "blobs").rglob("*") if p.is_file())
    lost.unlink()
    result = mailgate("db", "backup", str(tmp_path / "tuesday"), config=live)
    assert result.returncode == 66
    assert f"{lost}: missing: the database names it as attachment content" in result.stderr
    assert list(tmp_path.glob("*tuesday*")) == []


def test_mail_in_hand_at_the_backup_is_not_counted_as_a_death_after_the_restore(
    tmp_path: Path,
) -> None:
    """With `workers = 0` the daemon marks what it is processing; a backup taken meanwhile
    holds the mark, but nobody died with that message: the restored daemon processes it."""
    in_process = ProcessingConfig(workers=0)
    live = dataclasses.replace(daemon_config(tmp_path / "live"), processing=in_process)
    live_toml = write_toml(live)
    ctx = build_context(live)
    try:
        stored = accept(ctx.store, make_mail(subject="In hand"), "smtp", datetime.now(UTC))
    finally:
        ctx.store.dispose()
    with sqlite3.connect(tmp_path / "live" / "mailgate.db") as conn:
        conn.execute(
            "UPDATE intake SET in_hand_by = 'run-at-work' WHERE id = ?", (stored.intake_id,)
        )
    assert mailgate("db", "backup", str(tmp_path / "backup"), config=live_toml).returncode == 0
    restored = dataclasses.replace(daemon_config(tmp_path / "restored"), processing=in_process)
    result = mailgate("db", "restore", str(tmp_path / "backup"), config=write_toml(restored))
    assert result.returncode == 0, result.stderr
    with running(restored) as mg:
        (ticket,) = poll(lambda: tickets(mg.ctx), timeout=30, what="the message processed")
    assert ticket.subject == "In hand"
    intake = rows(tmp_path / "restored" / "mailgate.db", "intake")
    assert column(tmp_path / "restored" / "mailgate.db", "SELECT deaths FROM intake") == {0}
    assert len(intake) == 1


def test_a_database_locked_past_the_busy_timeout_is_said_not_waited_for_forever(
    tmp_path: Path, small_backup: tuple[Path, Path]
) -> None:
    live, _backup = small_backup
    live.write_text(live.read_text().replace("[paths]", "busy_timeout = 0.5\n[paths]"))
    database = tmp_path / "live" / "mailgate.db"
    with sqlite3.connect(database) as conn:  # a tool that took it out of WAL, say
        conn.execute("PRAGMA journal_mode=DELETE")
    with sqlite_locked(database):
        result = mailgate("db", "backup", str(tmp_path / "locked"), config=live)
    assert result.returncode == 75
    assert f"{database}: cannot copy the database: locked for over 0.5 s" in result.stderr
    assert list(tmp_path.glob("*locked*")) == []


def test_a_backup_says_what_it_holds(tmp_path: Path, small_backup: tuple[Path, Path]) -> None:
    _live, backup = small_backup
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["database"] == "sqlite"
    assert manifest["schema_revision"].isdigit() and manifest["mailgate_version"]
    assert manifest["counts"]["ticket"] == 2 and manifest["counts"]["attachment"] == 2
    for entry in manifest["files"]:
        content = (backup / entry["path"]).read_bytes()
        assert entry["size"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    kinds = sorted(entry["kind"] for entry in manifest["files"])
    assert kinds == ["blob", "blob", "database", "key"]
