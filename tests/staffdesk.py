"""A desk run through its command line, as staff and customers meet it: mail in with
`mailgate ingest`, mail out read from the file transport's .eml files, the CLI's JSON."""

from __future__ import annotations

import itertools
import json
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from mailgate.outbound.context import Context
from tests.mails import make_mail
from tests.test_contingent import Result, mailgate, write_config

VERIFIED = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"}


class Desk:
    """One desk on the test's database; every mail it sent so far, read as received."""

    def __init__(self, ctx: Context, tmp_path: Path, extra_config: str = "") -> None:
        self.config = write_config(ctx, tmp_path, extra_config)
        self.inbox = tmp_path / "in"
        self.inbox.mkdir()
        self.sent_dir = tmp_path / "sent"
        self._numbers = itertools.count(1)
        self._seen: set[Path] = set()

    def cli(self, *args: str) -> Result:
        return mailgate(self.config, *args)

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def agent(self, email: str, name: str, language: str | None = None) -> None:
        extra = ("--language", language) if language else ()
        assert self.cli("agents", "add", email, "--name", name, *extra).returncode == 0

    def ingest(self, raw: bytes) -> str:
        """The one line `mailgate ingest` prints for the mail, without the file name."""
        path = self.inbox / f"{next(self._numbers):03d}.eml"
        path.write_bytes(raw)
        result = self.cli("ingest", str(path))
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().removeprefix(f"{path}: ")

    def staff(self, sender: str, subject: str, body: str) -> str:
        """A verified agent mail."""
        return self.ingest(make_mail(sender=sender, subject=subject, body=body, headers=VERIFIED))

    def new_mail(self) -> list[EmailMessage]:
        """The mails sent since the last call, in the order they were written."""
        files = sorted(p for p in self.sent_dir.glob("*.eml") if p not in self._seen)
        self._seen.update(files)
        return [message_from_bytes(p.read_bytes(), policy=default) for p in files]  # type: ignore[misc]

    def ticket(self, cid: str) -> Any:
        return self.json("tickets", "show", cid)


def text_of(message: EmailMessage) -> str:
    """The plain text part as the recipient's client shows it."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def to(message: EmailMessage) -> str:
    return str(message["To"])
