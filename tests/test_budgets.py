"""Time and size budgets: no mail a sender can write holds processing for long."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from mailgate.config import Config, ProcessingConfig
from mailgate.flows.pipeline import Outcome
from mailgate.outbound.context import Context
from mailgate.reading.mime.budgets import MAX_HTML
from mailgate.reading.parse import ParsedMail
from mailgate.service import daemon, workers
from mailgate.service.workers import WorkerProcessor
from mailgate.store.models import Intake, Ticket
from mailgate.store.spool import stored_raws
from tests.daemon_harness import (
    Child,
    DaemonThread,
    count,
    daemon_config,
    running,
    send_data,
    write_config,
)
from tests.helpers import free_port, poll
from tests.mailroom import Mailroom, text_of, to
from tests.mails import make_mail
from tests.test_cli import mailgate

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


def test_html_nested_past_the_budget_is_read_in_bounded_time(desk: Mailroom) -> None:
    # The sanitiser checks every open element at each tag: 2 MB of nested blockquotes took
    # minutes. Past MAX_HTML_DEPTH the mail is read as raw text, as an over-size one is.
    body = "<p>Dear support, see below.</p>" + "<blockquote><div>quoted" * 40_000
    started = time.monotonic()
    assert desk.ingest(html_mail(body)) == "ticket CID-1000"
    assert time.monotonic() - started < 5.0  # about a second on an idle machine
    (article,) = desk.show("CID-1000")["articles"]
    assert article["text"].startswith("Dear support, see below.")
    assert article["html"] is None
    assert article["note"] == (
        "HTML nested too deeply to read: shown as raw text, the original attached as message.html"
    )
    (attached,) = article["attachments"]
    assert attached["size"] == len(body.encode())


def test_html_nested_as_real_threads_are_keeps_its_reading(desk: Mailroom) -> None:
    # Forty replies deep, a Gmail thread nests its quotes about 120 elements.
    body = "<div>Fine now.</div>" + '<div class="gmail_quote"><blockquote><div>x' * 40
    assert desk.ingest(html_mail(body)) == "ticket CID-1000"
    (article,) = desk.show("CID-1000")["articles"]
    assert article["note"] == "" and article["html"] is not None


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


# --- the daemon: one message never holds processing or shutdown -------------------------------


def _tickets(config: Path) -> list[str]:
    result = mailgate("tickets", "list", "--format", "json", config=config)
    return sorted(t["subject"] for t in json.loads(result.stdout)) if result.returncode == 0 else []


def test_a_5_mb_html_mail_holds_up_neither_the_mail_after_it_nor_a_stop(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen, free_port())  # the relay is down: mail waits
    mg = Child(config, listen, tmp_path / "stderr.log")
    mg.start()
    try:
        line = "a < b and c <d\r\n"
        html = html_mail("<html><body>" + line * (5_000_000 // len(line)), "Huge")
        assert send_data(mg.address, html)[0] == 250
        for n in range(3):
            mail = make_mail(subject=f"Ordinary {n}", sender=f"c{n}@acme.example")
            assert send_data(mg.address, mail)[0] == 250
        expected = ["Huge", "Ordinary 0", "Ordinary 1", "Ordinary 2"]
        poll(lambda: _tickets(config) == expected or None, timeout=60, what="four tickets")
    finally:
        started = time.monotonic()
        mg.stop()  # SIGTERM; exit status 0
        assert time.monotonic() - started < 20


class StuckWorkers(WorkerProcessor):
    """Worker processes that spin, as a reading gone quadratic would, on the stuck message."""

    def _job(self) -> Callable[..., list[Outcome]]:
        return _spins_on_stuck


def _spins_on_stuck(
    config: Config, generation: int, intake_ids: list[int], parsed: dict[int, ParsedMail]
) -> list[Outcome]:
    assert workers._worker is not None
    with workers._worker[1].store.session() as session:
        if any(b"Subject: stuck" in raw for raw in stored_raws(session, intake_ids).values()):
            (Path(config.paths.data_dir).parent / "spinning").touch()
            while True:  # pure Python: no signal or thread of its own process can end it
                pass
    return workers._process_in_worker(config, generation, intake_ids, parsed)


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        daemon,
        "build_processor",
        lambda ctx: StuckWorkers(ctx.config, ctx.config.processing.workers),
    )


def limited(tmp_path: Path, seconds: float) -> Config:
    config = daemon_config(tmp_path)
    return dataclasses.replace(
        config, processing=ProcessingConfig(workers=1, time_limit_seconds=seconds)
    )


def test_a_worker_past_the_time_limit_is_ended_and_its_message_quarantined(
    tmp_path: Path, stuck: None, caplog: pytest.LogCaptureFixture
) -> None:
    with running(limited(tmp_path, 8)) as mg:
        assert send_data(mg.address, make_mail(subject="stuck"))[0] == 250
        for n in range(3):
            mail = make_mail(subject=f"Ordinary {n}", sender=f"c{n}@acme.example")
            assert send_data(mg.address, mail)[0] == 250
        poll(lambda: count(mg.ctx, Ticket) == 3 or None, timeout=90, what="three tickets")
        quarantined = poll(
            lambda: _intake_with_status(mg.ctx, "quarantined"), timeout=90, what="quarantine"
        )
    assert quarantined.reason == "processing it took longer than 8 s 2 times"
    assert "event=worker_ended" in caplog.text


def test_a_stop_ends_a_worker_that_spins(tmp_path: Path, stuck: None) -> None:
    mg = DaemonThread(limited(tmp_path, 600))
    mg.start()
    try:
        assert send_data(mg.address, make_mail(subject="stuck"))[0] == 250
        poll(lambda: (tmp_path / "spinning").exists() or None, what="the worker spinning")
    finally:
        started = time.monotonic()
        mg.shutdown()
    assert time.monotonic() - started < 20  # the drain (10 s), then the worker is killed
    assert _intake_with_status(mg.ctx, "received") is not None  # waits for the next start


def _intake_with_status(ctx: Context, status: str) -> Intake | None:
    with ctx.store.session() as session:
        return session.exec(select(Intake).where(Intake.status == status)).first()
