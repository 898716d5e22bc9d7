"""Files that travel with mail to staff: every notification carries the attachments of the
mail it tells about, however many mails arrive at once."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.config import StaffConfig
from tests.daemon_harness import SUPPORT, connect, daemon_config, running
from tests.helpers import parsed, poll
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]
TEAM = "team@example.com"


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mg.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        f'from = "Support <{SUPPORT}>"\n'
        f'[staff]\nteam_address = "{TEAM}"\n',
        encoding="utf-8",
    )
    return path


def request_with_file(n: int) -> tuple[bytes, str, bytes]:
    """A customer's new request with a log file of its own content."""
    payload = f"log of printer {n}\n".encode() * (200 + n)
    name = f"printer-{n}.log"
    raw = make_mail(
        subject=f"Printer {n} broken",
        sender=f"Kunde {n} <kunde{n}@firma{n}.example>",
        attachments=((name, "text/plain", payload),),
    )
    return raw, name, payload


def notifications(sent: Path) -> list[EmailMessage]:
    found = [parsed(p.read_bytes()) for p in sorted(sent.glob("*.eml"))]
    return [m for m in found if m["To"] == TEAM]  # type: ignore[misc]


def files_of(msg: EmailMessage) -> dict[str, bytes]:
    return {str(p.get_filename()): p.get_payload(decode=True) for p in msg.iter_attachments()}


def assert_each_carries_its_file(sent: Path, expected: dict[str, tuple[str, bytes]]) -> None:
    by_subject = {str(m["Subject"]): m for m in notifications(sent)}
    for subject_part, (name, payload) in expected.items():
        [msg] = [m for s, m in by_subject.items() if subject_part in s]
        assert files_of(msg) == {name: payload}, subject_part
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "too large" not in text and "could not" not in text


def test_ten_mails_with_files_ingested_at_once_each_notify_with_their_file(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    expected: dict[str, tuple[str, bytes]] = {}
    inbox = tmp_path / "in"
    inbox.mkdir()
    # More than one batch, so that the second process parses ahead while the first stores.
    for n in range(60):
        if n % 6 == 0:
            raw, name, payload = request_with_file(n)
            expected[f"Printer {n} broken"] = (name, payload)
        else:
            raw = make_mail(subject=f"Question {n}", sender=f"K {n} <k{n}@f{n}.example>")
        (inbox / f"{n:03}.eml").write_bytes(raw)
    assert len(expected) == 10
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "-c", str(config), "ingest"]
        + [str(p) for p in sorted(inbox.iterdir())],
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b"blob_unreadable" not in done.stderr
    assert_each_carries_its_file(tmp_path / "sent", expected)


def test_thirty_mails_with_files_by_smtp_each_notify_with_their_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    config = daemon_config(tmp_path)
    config = dataclasses.replace(config, staff=StaffConfig(team_address=TEAM))
    mails = [request_with_file(n) for n in range(30)]
    expected = {f"Printer {n} broken": (name, data) for n, (_, name, data) in enumerate(mails)}
    with running(config) as mg:

        def send(raw: bytes) -> None:
            with connect(mg.address) as client:
                client.sendmail("kunde@firma.example", [SUPPORT], raw)

        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(send, [raw for raw, _, _ in mails]))
        sent = tmp_path / "sent"
        poll(lambda: len(notifications(sent)) == 30, timeout=60, what="thirty notifications")
    assert_each_carries_its_file(sent, expected)
    assert "blob_unreadable" not in caplog.text + capfd.readouterr().err
