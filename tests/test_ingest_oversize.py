"""`mailgate ingest` of a mail over `[smtp] max_message_size`, from a file or standard input:
taken as the IMAP intake takes one (its header stored, no ticket, its sender told once)."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest

from tests.mails import make_mail
from tests.test_cli import mailgate, mailgate_process, write_config

LIMIT = 100_000
DUMP = ("core.dump", "application/octet-stream", b"\x00\x01" * 60_000)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[smtp]\n", f"[smtp]\nmax_message_size = {LIMIT}\n"))
    return path


def notes(tmp_path: Path) -> list[Message]:
    sent = sorted((tmp_path / "sent").glob("*.eml"))
    return [message_from_bytes(p.read_bytes()) for p in sent]


def big(**headers: str) -> bytes:
    raw = make_mail(subject="Crash dump", attachments=(DUMP,), headers=headers or None)
    assert len(raw) > LIMIT
    return raw


def test_an_over_size_file_makes_no_ticket_and_its_sender_is_told_once(
    cfg: Path, tmp_path: Path
) -> None:
    path = tmp_path / "big.eml"
    path.write_bytes(big())
    said = mailgate("ingest", str(path), config=cfg)
    assert said.returncode == 0, said.stderr
    assert said.stdout == (
        f"{path}: ignored: too large: {path.stat().st_size} bytes, over the limit of {LIMIT};"
        " header stored only\n"
    )
    assert mailgate("tickets", "list", "--format", "json", config=cfg).stdout.strip() == "[]"
    (note,) = notes(tmp_path)
    assert (note["To"], note["Subject"]) == (
        "alice@acme.example",
        "Your message was too large: Crash dump",
    )
    again = mailgate("ingest", str(path), config=cfg)
    assert again.returncode == 0 and "duplicate of stored message 1 (ignored: too large" in (
        again.stdout
    )
    assert len(notes(tmp_path)) == 1


def test_over_size_mail_on_standard_input(cfg: Path, tmp_path: Path) -> None:
    raw = big()
    said = mailgate_process("ingest", "-", config=cfg, stdin=raw)
    assert said.returncode == 0, said.stderr
    assert said.stdout == (
        f"-: ignored: too large: {len(raw)} bytes, over the limit of {LIMIT}; header stored only\n"
    )
    assert [n["Subject"] for n in notes(tmp_path)] == ["Your message was too large: Crash dump"]


def test_an_automatic_over_size_mail_is_not_answered(cfg: Path, tmp_path: Path) -> None:
    path = tmp_path / "auto.eml"
    path.write_bytes(big(**{"Auto-Submitted": "auto-generated"}))
    said = mailgate("ingest", str(path), config=cfg)
    assert "ignored: too large" in said.stdout
    assert notes(tmp_path) == []


def test_a_mail_within_the_limit_is_a_ticket(cfg: Path, tmp_path: Path) -> None:
    path = tmp_path / "small.eml"
    path.write_bytes(make_mail(subject="Small", attachments=((DUMP[0], DUMP[1], b"x" * 1000),)))
    said = mailgate("ingest", str(path), config=cfg)
    assert said.stdout == f"{path}: ticket CID-1000\n"


def test_one_batch_of_a_whole_and_an_over_size_mail_tells_them_apart(
    cfg: Path, tmp_path: Path
) -> None:
    """Both in one batch, whose stored sizes are looked up together: only the one whose
    header alone was stored is answered as too large."""
    small, large = tmp_path / "small.eml", tmp_path / "large.eml"
    small.write_bytes(make_mail(subject="Printer", sender="bob@beta.example"))
    large.write_bytes(big())
    said = mailgate("ingest", str(small), str(large), config=cfg)
    assert said.returncode == 0, said.stderr
    lines = said.stdout.splitlines()
    assert lines[0] == f"{small}: ticket CID-1000"
    assert lines[1].startswith(f"{large}: ignored: too large:")
    subjects = sorted(n["Subject"] for n in notes(tmp_path))
    assert subjects == ["Your message was too large: Crash dump", "[CID-1000] Printer"]
