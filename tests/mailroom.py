"""A desk driven as its users drive it: `mailgate ingest` of .eml files, the mail the file
transport wrote as each recipient reads it, and the command line with `--format json`."""

from __future__ import annotations

import dataclasses
import json
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from mailgate import cli
from tests.helpers import Clock
from tests.test_cli import Result, mailgate

SUPPORT = "support@example.com"
AGENT = "anna@example.com"


class Mailroom:
    """One desk under tmp_path on the given database, reading time from the test's clock."""

    def __init__(self, tmp_path: Path, db_url: str, extra: str = "") -> None:
        self.tmp_path = tmp_path
        self.sent_dir = tmp_path / "sent"
        self.config = tmp_path / "mailgate.toml"
        self.config.write_text(
            f'[database]\nurl = "{db_url}"\n'
            f'[paths]\ndata_dir = "{tmp_path}/data"\n'
            f'[smtp]\naddresses = ["{SUPPORT}"]\n'
            f'[outbound]\ntransport = "file"\ndirectory = "{self.sent_dir}"\n'
            f'from = "Support <{SUPPORT}>"\n'
            '[security]\nagent_verification = "none"\n' + extra,
            encoding="utf-8",
        )
        self.files = 0
        self.read: set[str] = set()

    def configure(self, extra: str) -> None:
        """More configuration (whole sections), as an operator would add it to the file."""
        with self.config.open("a", encoding="utf-8") as file:
            file.write(extra)

    def run(self, *args: str) -> Result:
        return mailgate(*args, config=self.config)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def ingest(self, raw: bytes) -> str:
        """The line `mailgate ingest` prints for the message, without the file name."""
        (line,) = self.ingest_many(raw)
        return line

    def ingest_many(self, *raws: bytes) -> list[str]:
        """One `mailgate ingest` of several files: its lines, without the file names."""
        paths = []
        for raw in raws:
            self.files += 1
            paths.append(self.tmp_path / f"in-{self.files:04d}.eml")
            paths[-1].write_bytes(raw)
        result = self.run("ingest", *map(str, paths))
        assert result.returncode == 0, result.stderr
        return [line.partition(": ")[2] for line in result.stdout.splitlines()]

    def new_mail(self) -> list[EmailMessage]:
        """The mails written since the last call, oldest first, as their recipients read them."""
        files = sorted(self.sent_dir.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        fresh = [p for p in files if p.name not in self.read]
        self.read.update(p.name for p in fresh)
        return [message_from_bytes(p.read_bytes(), policy=default) for p in fresh]  # type: ignore[misc]

    def show(self, cid: str) -> Any:
        return self.json("tickets", "show", cid)


def to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if address in str(m["To"]) + str(m["Cc"] or "")]


def answering(raw: bytes, ours: EmailMessage) -> bytes:
    """A report as Exchange writes it: In-Reply-To names the mail of ours it reports on."""
    return f"In-Reply-To: {ours['Message-ID']}\r\n".encode() + raw


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


@pytest.fixture
def room(tmp_path: Path, db_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Mailroom:
    """A desk on the parametrised database with agent Anna; the CLI reads the test's clock."""
    real = cli.build_context
    monkeypatch.setattr(
        cli,
        "build_context",
        lambda cfg, **kw: dataclasses.replace(real(cfg, **kw), clock=clock),
    )
    desk = Mailroom(tmp_path, db_url)
    assert desk.run("agents", "add", AGENT, "--name", "Anna").returncode == 0
    return desk
