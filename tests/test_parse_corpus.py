"""parse() over the whole real-world corpus: never raises, always gives text."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.reading.parse import MailPart, ParsedMail, parse
from tests.conftest import CORPUS

FILES = sorted(CORPUS.glob("*/*.eml"))


def test_corpus_is_there() -> None:
    assert len(FILES) >= 100, f"corpus missing or moved: {CORPUS}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_message_parses(path: Path) -> None:
    mail = parse(path.read_bytes())

    assert isinstance(mail, ParsedMail)
    assert isinstance(mail.subject, str)
    assert isinstance(mail.text, str)
    assert "\r" not in mail.subject and "\n" not in mail.subject
    assert "\x00" not in mail.text
    assert mail.from_addr == mail.from_addr.lower()
    assert all(isinstance(part, MailPart) and part.filename for part in mail.parts)
    assert all("/" not in part.filename and "\\" not in part.filename for part in mail.parts)
    assert mail.date is None or mail.date.tzinfo is not None
    for text in (mail.subject, mail.text, mail.html or "", *mail.headers.values()):
        text.encode("utf-8")  # no lone surrogates: everything must be storable
