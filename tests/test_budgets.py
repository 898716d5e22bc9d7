"""Time and size budgets: no mail a sender can write holds processing for long."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.mailroom import Mailroom, text_of, to

ALICE = "alice@acme.example"
# Lines that leave markup open for HTMLParser until the end of the input: each one made it
# rescan the rest of the mail, 22 s for 100 KB of the second kind.
OPEN_LINES = {
    "tag-open-at-line-end": "hello world text <b\n",
    "less-than-in-text": "a < b and c <d\n",
    "attribute-quote-open": 'hello <a href="http://x.example/\n',
    "comment-open": "hello <!-- x\n",
}


def html_mail(body: str, subject: str = "Newsletter") -> bytes:
    head = (
        f"From: Alice <{ALICE}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@acme.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return (head + body).encode("utf-8")


@pytest.fixture
def desk(tmp_path: Path) -> Mailroom:
    return Mailroom(tmp_path, f"sqlite:///{tmp_path}/mg.db")


@pytest.mark.parametrize("line", OPEN_LINES.values(), ids=OPEN_LINES.keys())
def test_html_left_open_on_every_line_is_read_in_linear_time(desk: Mailroom, line: str) -> None:
    body = "<html><body><p>Dear support,</p>" + line * (150_000 // len(line))
    started = time.monotonic()
    assert desk.ingest(html_mail(body)) == "ticket CID-1000"
    assert time.monotonic() - started < 3.0  # generous: a few hundredths on an idle machine
    (article,) = desk.show("CID-1000")["articles"]
    assert article["text"].startswith("Dear support,")
    assert "<p>" not in article["text"]
    (ack,) = to(desk.new_mail(), ALICE)
    assert "CID-1000" in str(ack["Subject"])
    assert text_of(ack)


def plain_mail(body: str, subject: str = "Listing") -> bytes:
    head = (
        f"From: Alice <{ALICE}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@acme.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return (head + body).encode("utf-8")


def test_uuencode_begin_lines_without_end_are_read_in_linear_time(desk: Mailroom) -> None:
    # Each "begin" made a search to the next "end" line; with none, to the end of the text.
    body = "Our file list:\r\n" + "begin 644 report.txt\r\nsee above\r\n" * 10_000
    started = time.monotonic()
    assert desk.ingest(plain_mail(body)) == "ticket CID-1000"
    assert time.monotonic() - started < 3.0
    (article,) = desk.show("CID-1000")["articles"]
    assert article["text"].count("begin 644 report.txt") == 10_000
    assert article["attachments"] == []
