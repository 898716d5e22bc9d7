"""Retention: the bytes of old mail whose outcome is committed go; tickets and rows stay."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from mailgate.config import load
from mailgate.service import jobs
from mailgate.service.app import build_context
from mailgate.store.blobs import blob_path
from tests.helpers import Clock
from tests.mailroom import Mailroom
from tests.mails import make_mail
from tests.test_cli import REPO, mailgate

DAYS = "[retention]\nraw_mail_days = 30\nsent_mail_days = 30\noutbox_days = 30\n"
PDF = ("invoice.pdf", "application/pdf", b"%PDF-1.4 the invoice")
NO_SENDER = b"To: support@example.com\r\nSubject: who am I\r\n\r\nbody\r\n"


def sent_file(room: Mailroom, outbox_id: int) -> list[str]:
    return sorted(p.name for p in room.sent_dir.glob(f"*-{outbox_id}-*.eml"))


def one_try(room: Mailroom) -> None:
    """One try per mail: a delivery that fails is failed at once."""
    text = room.config.read_text().replace("[outbound]\n", "[outbound]\nmax_attempts = 1\n")
    room.config.write_text(text)


def failing_delivery(room: Mailroom, raw: bytes) -> None:
    """Ingest while the sent mail folder cannot be written (a full or broken disk)."""
    away = room.sent_dir.with_name("sent.away")
    room.sent_dir.mkdir(exist_ok=True)
    room.sent_dir.rename(away)
    room.sent_dir.write_text("not a folder")
    try:
        room.ingest(raw)
    finally:
        room.sent_dir.unlink()
        away.rename(room.sent_dir)


def test_old_committed_mail_loses_its_bytes_and_everything_else_stays(
    room: Mailroom, clock: Clock
) -> None:
    one_try(room)
    room.configure(DAYS)
    # Day 0: a request with an attachment, a message nobody sent, and one whose answer failed.
    assert room.ingest(make_mail(body="The printer is jammed.\n", attachments=(PDF,))).startswith(
        "ticket CID-1000"
    )
    assert room.ingest(NO_SENDER).startswith("quarantined")
    failing_delivery(room, make_mail(subject="Bob's issue", sender="bob@beta.example"))
    # Day 35: a recent request, its answer sent.
    clock.advance(days=35)
    room.ingest(make_mail(subject="Recent", sender="carol@gamma.example"))
    assert [r["status"] for r in room.json("outbox", "list")] == ["sent", "failed", "sent"]
    assert sent_file(room, 1) and sent_file(room, 3)
    old_file = sent_file(room, 1)[0]
    clock.advance(days=5)  # day 40: day 0 is older than 30 days, day 35 is not

    dry = room.run("retention", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "raw mail: would remove 2" in dry.stdout and "ids 1, 3" in dry.stdout
    assert "outbox: would remove 1" in dry.stdout and f"  {old_file}" in dry.stdout
    assert "removed by" not in json.dumps(room.json("quarantine", "show", "1"))
    assert sent_file(room, 1) == [old_file]

    done = room.json("retention", "run")
    assert (done["raw_mail"], done["outbox"], done["sent_files"]) == ([1, 3], [1], [old_file])
    note = "removed by retention on 2026-12-12"
    # The old raw mail: its row and its ticket stay, its bytes are gone and say so.
    stored = room.json("quarantine", "show", "1")
    assert (stored["status"], stored["removed"], stored["headers"]) == ("done", note, note)
    ticket = room.json("tickets", "show", "CID-1000", "--quoted")
    (first, *_) = ticket["articles"]
    assert first["text"].strip() == "The printer is jammed."
    assert first["received_text"] == first["received_removed"] == note
    shown = room.run("tickets", "show", "CID-1000", "--quoted").stdout
    assert "The printer is jammed." in shown
    assert f"(the mail as received: {note})" in shown
    (attachment,) = first["attachments"]
    assert attachment["filename"] == "invoice.pdf"
    assert blob_path(room.tmp_path / "data", attachment["sha256"]).read_bytes() == PDF[2]
    # The quarantined message keeps its bytes however old; the recent mail keeps them.
    assert "Subject: who am I" in room.json("quarantine", "show", "2")["headers"]
    recent = room.json("tickets", "show", "CID-1002", "--quoted")["articles"][0]
    assert recent["received_text"].strip() == "Our printer does not print."
    # Sent mail: the old file and outbox bytes go; the failed and the recent mail stay.
    rows = room.json("outbox", "list")
    assert [r["removed"] for r in rows] == [note, None, None]
    assert note in room.run("outbox", "list").stdout
    assert sent_file(room, 1) == [] and sent_file(room, 3)
    retried = room.run("outbox", "retry", "2")
    assert "requeued 1" in retried.stdout and "sent 1" in retried.stdout
    # The run is on record; a second one finds nothing more.
    (event,) = room.json("retention", "log")
    assert event["action"] == "retention"
    assert event["detail"].startswith("raw mail 2 (")
    again = room.json("retention", "run")
    assert (again["raw_mail"], again["outbox"], again["sent_files"]) == ([], [], [])
    assert len(room.json("retention", "log")) == 1


def test_retention_off_by_default_removes_nothing(room: Mailroom, clock: Clock) -> None:
    room.ingest(make_mail())
    clock.advance(days=3650)
    result = room.run("retention", "run")
    assert result.returncode == 0
    assert "raw mail: removed 0" in result.stdout
    assert "retention is off" in result.stdout
    assert (
        "Our printer"
        in room.json("tickets", "show", "CID-1000", "--quoted")["articles"][0]["received_text"]
    )
    assert room.json("jobs", "list") == [
        j for j in room.json("jobs", "list") if j["name"] != "retention"
    ]


def test_the_scheduled_job_removes_what_the_command_would(room: Mailroom, clock: Clock) -> None:
    room.configure(DAYS + 'schedule = "15 2 * * *"\n')
    (job,) = [j for j in room.json("jobs", "list") if j["name"] == "retention"]
    assert job["schedule"] == "cron 15 2 * * * (UTC)"
    room.ingest(make_mail())
    clock.advance(days=31)
    cfg = load(room.config)
    ctx = dataclasses.replace(build_context(cfg), clock=clock)
    try:
        (retain,) = [j for j in jobs.jobs_for(cfg) if j.name == "retention"]
        asyncio.run(retain.run(SimpleNamespace(ctx=ctx)))  # type: ignore[arg-type]
    finally:
        ctx.store.dispose()
    assert room.json("quarantine", "show", "1")["removed"] == "removed by retention on 2026-12-03"
    assert sent_file(room, 1) == []


def console(room: Mailroom, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script on the room's configuration (and the real clock)."""
    command = [sys.executable, "-m", "mailgate", "-c", str(room.config), *args]
    return subprocess.run(command, capture_output=True, cwd=REPO, timeout=60, text=True)


def test_a_console_run_removes_mail_older_than_the_days(tmp_path: Path, room: Mailroom) -> None:
    """On the real clock, mail of the test clock's November is more than 30 days old."""
    room.configure(DAYS)
    room.ingest(make_mail())
    done = console(room, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert "raw mail: removed 1 (" in done.stdout
    assert "sent mail files: removed 1 (" in done.stdout
    assert list(room.sent_dir.glob("*.eml")) == []


def test_bad_retention_settings_are_named(tmp_path: Path) -> None:
    for setting, said in (
        ("raw_mail_days = -1", "retention.raw_mail_days: must be 0 (keep forever) or more"),
        ('schedule = "every night"', "retention.schedule: 'every night'"),
        ('schedule = ""', "retention.schedule: must be set"),
        ('outbox_days = "30"', "retention.outbox_days: expected int, got str"),
    ):
        path = tmp_path / "mailgate.toml"
        path.write_text(f"[retention]\n{setting}\n", encoding="utf-8")
        result = mailgate("retention", "run", "--dry-run", config=path)
        assert result.returncode == 78, (setting, result.stdout)
        assert said in result.stderr and "Traceback" not in result.stderr


def test_a_dry_run_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "mailgate.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/none.db"\n{DAYS}', encoding="utf-8")
    for args in (("retention", "run", "--dry-run"), ("customers", "forget", "a@b.example")):
        result = mailgate(*args, config=path)
        assert result.returncode == 78 and "no database at" in result.stderr, args
    assert not (tmp_path / "none.db").exists()
