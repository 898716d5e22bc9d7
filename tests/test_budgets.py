"""Time and size budgets: no mail a sender can write holds processing for long."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailgate.mime.budgets import MAX_HTML
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


def test_html_over_budget_is_shown_as_raw_text_and_attached(desk: Mailroom) -> None:
    paragraph = "<p>Dear <b>support</b>, the printer &amp; the scanner fail.</p>\n"
    body = paragraph * (MAX_HTML // len(paragraph) + 10)
    assert desk.ingest(html_mail(body)) == "ticket CID-1000"
    (article,) = desk.show("CID-1000")["articles"]
    assert article["text"].startswith("Dear support , the printer & the scanner fail.")
    assert "<p>" not in article["text"]
    assert article["html"] is None  # not sanitised: shown as text, kept as a file
    assert article["note"] == (
        "HTML too large to read: shown as raw text, the original attached as message.html"
    )
    (attached,) = article["attachments"]
    assert (attached["filename"], attached["content_type"]) == ("message.html", "text/html")
    assert attached["size"] == len(body.encode())
    (ack,) = to(desk.new_mail(), ALICE)
    assert "CID-1000" in str(ack["Subject"])


def test_html_within_budget_keeps_its_reading_and_no_note(desk: Mailroom) -> None:
    assert desk.ingest(html_mail("<p>Dear <b>support</b>,</p><p>help</p>")) == "ticket CID-1000"
    (article,) = desk.show("CID-1000")["articles"]
    assert (article["text"], article["note"], article["attachments"]) == (
        "Dear support,\n\nhelp",
        "",
        [],
    )
    assert "<b>support</b>" in article["html"]


def test_address_comments_nested_past_the_budget_cost_no_header(desk: Mailroom) -> None:
    # The stdlib's parser recursed once a level: every header of the mail was lost with it.
    nested = "(" * 2000 + "x" + ")" * 2000
    raw = (
        f"From: Alice <{ALICE}>\r\nTo: support@example.com, {nested} <bob@acme.example>\r\n"
        "Subject: Printer on floor 3\r\nMessage-ID: <nest@acme.example>\r\n\r\nIt jams.\r\n"
    ).encode()
    assert desk.ingest(raw) == "ticket CID-1000"
    ticket = desk.show("CID-1000")
    assert ticket["subject"] == "Printer on floor 3"
    (article,) = ticket["articles"]
    assert article["from"] == ALICE
    assert article["to"] == ["support@example.com", "bob@acme.example"]
    assert article["note"] == "address header too deeply nested: read without its comments"
