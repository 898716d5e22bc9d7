"""HTML-only replies: what the writer wrote, cut from the quoted history on the markup the
mail clients write, in the languages our customers write in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailgate.flows.replies import written_text
from mailgate.reading.mime.budgets import MAX_HTML
from mailgate.reading.mime.htmlquote import read_html
from mailgate.reading.parse import parse
from mailgate.reading.quotes import strip_quotes
from tests.mailroom import AGENT, Mailroom
from tests.mails import make_mail

FIXTURES = Path(__file__).parent / "fixtures" / "replies_html"
CASES = sorted(
    p for p in FIXTURES.iterdir() if p.suffix in (".html", ".eml") and ".expected" not in p.name
)
CLIENTS = (
    "gmail", "outlook", "owa", "outlook_ios", "outlook_android", "hotmail", "apple", "ios",
    "thunderbird", "roundcube", "yahoo", "proton", "gmx", "webde", "zimbra", "own_citation",
)  # fmt: skip
LANGUAGES = ("de", "en", "fr", "it", "es", "pl", "nl", "sv", "ru")


def html_reply(body: bytes | str, subject: str = "Re: [CID-1042] Drucker") -> bytes:
    head = (
        "From: Kunde <kunde@kunde.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <reply-1042@kunde.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return head.encode() + (body.encode() if isinstance(body, str) else body)


def raw_of(path: Path) -> bytes:
    """An .eml as it is; an .html as the body of an HTML-only reply."""
    return path.read_bytes() if path.suffix == ".eml" else html_reply(path.read_bytes())


def test_the_corpus_covers_every_client_and_language() -> None:
    names = [p.stem for p in CASES]
    assert len(names) >= 30
    for client in CLIENTS:
        assert any(name.startswith(f"{client}_") for name in names), client
    for lang in LANGUAGES:
        assert sum(f"_{lang}_" in f"{name}_" for name in names) >= 2, lang
    assert any("inline" in name for name in names)
    assert any("forward" in name for name in names)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_fixture(path: Path) -> None:
    expected = path.with_name(f"{path.stem}.expected.txt").read_text(encoding="utf-8")
    assert written_text(parse(raw_of(path))) == expected.rstrip("\n")


def test_a_mail_with_a_text_part_is_read_from_it_as_before() -> None:
    html = (FIXTURES / "gmail_fr_top.html").read_text(encoding="utf-8")
    raw = (
        b"From: Kunde <kunde@kunde.example>\r\nTo: support@example.com\r\n"
        b"Subject: Re: [CID-1042] Drucker\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour, plain text wins.\r\n--b\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + b"\r\n--b--\r\n"
    )
    assert written_text(parse(raw)) == "Bonjour, plain text wins."


def test_a_reply_that_is_all_quote_keeps_the_whole_text() -> None:
    body = (
        '<div class="moz-cite-prefix">Am 05.12.26 um 10:12 schrieb Support:</div>'
        '<blockquote type="cite"><p>Bitte den Drucker neu starten.</p></blockquote>'
    )
    assert written_text(parse(html_reply(body))) == (
        "Am 05.12.26 um 10:12 schrieb Support:\n\nBitte den Drucker neu starten."
    )


def test_writer_text_ending_in_a_colon_above_a_quote_is_not_taken_for_an_attribution() -> None:
    body = (
        "<div>Regarding your question about the order:</div>"
        '<blockquote type="cite"><div>Which order is it?</div></blockquote>'
        "<div>Order 4711.</div>"
    )
    assert written_text(parse(html_reply(body))) == (
        "Regarding your question about the order:\n\nOrder 4711."
    )


# Hostile markup: the reading stays linear; past the HTML budget no structure is read. (The
# reading itself is timed: sanitising deeply nested HTML for display costs more on its own.)
HOSTILE = {
    "nested-cite": '<blockquote type="cite">',
    "nested-div": "<div>",
    "cite-pairs": '<blockquote type="cite">x</blockquote>',
    "attribution-and-cite": "On 5 Dec 2026, at 10:12 a@b.example wrote:<blockquote type=cite>q",
    "border-blocks": '<div style="border-top:solid 1pt">text ',
    "plain-blockquotes": "<blockquote>Von: x ",
    "stray-end-tags": "</span>",
}


@pytest.mark.parametrize("unit", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markup_just_under_the_budget_is_read_in_linear_time(unit: str) -> None:
    body = "<div>Hello support,</div><div>see below.</div>" + unit * (MAX_HTML // 2 // len(unit))
    started = time.monotonic()
    reading = read_html(body)
    text = strip_quotes(reading.text if reading.written is None else reading.written)
    assert (
        time.monotonic() - started < 5.0
    )  # the property tests' oracle; a fraction of it when idle
    assert text.startswith("Hello support,")


def test_five_mb_of_unclosed_quote_tags_take_the_cheap_reading() -> None:
    body = "<div>Hello support,</div>" + '<blockquote type="cite"><div>quoted' * 150_000
    assert len(body) > 5_000_000
    started = time.monotonic()
    mail = parse(html_reply(body))
    text = written_text(mail)
    assert time.monotonic() - started < 5.0
    assert "budget:html" in mail.defects
    assert mail.html_written is None  # past the budget no structure is read
    assert text.startswith("Hello support,")


# Through the desk: the reply ingested, the article staff read, the full mail on request.
CUSTOMER = "Kunde <kunde@kunde.example>"


def reply_on(room: Mailroom, fixture: str, subject: str = "Re: [CID-1000] Drucker") -> str:
    body = (FIXTURES / f"{fixture}.html").read_text(encoding="utf-8")
    return room.ingest(html_reply(body, subject))


@pytest.fixture
def ticket(room: Mailroom) -> Mailroom:
    first = make_mail(subject="Drucker", body="Der Drucker druckt nicht.\n", sender=CUSTOMER)
    assert room.ingest(first) == "ticket CID-1000"
    return room


@pytest.mark.parametrize(
    "fixture", ["outlook_fr_top", "gmail_ru_top", "apple_nl_old", "thunderbird_en_inline"]
)
def test_the_article_of_an_html_only_reply_holds_only_what_the_customer_wrote(
    ticket: Mailroom, fixture: str
) -> None:
    assert reply_on(ticket, fixture) == "reply CID-1000"
    expected = (FIXTURES / f"{fixture}.expected.txt").read_text(encoding="utf-8").rstrip("\n")
    _first, reply = ticket.show("CID-1000")["articles"]
    assert reply["text"] == expected
    assert "please restart the printer" not in reply["text"]


def test_tickets_show_says_what_is_hidden_and_quoted_shows_it(ticket: Mailroom) -> None:
    assert reply_on(ticket, "outlook_nl_top") == "reply CID-1000"
    shown = ticket.run("tickets", "show", "CID-1000")
    assert shown.returncode == 0, shown.stderr
    assert "bedankt voor de snelle hulp" in shown.stdout
    assert "please restart the printer" not in shown.stdout
    # Van/Verzonden/Aan/Onderwerp and the four lines of the quoted mail.
    assert "(8 lines of quoted text or signature hidden: show them with --quoted)" in shown.stdout
    assert shown.stdout.count("hidden: show them") == 1  # the first mail lost nothing
    full = ticket.run("tickets", "show", "CID-1000", "--quoted")
    assert full.returncode == 0, full.stderr
    assert "bedankt voor de snelle hulp" in full.stdout
    assert "Van: Support <support@example.com>" in full.stdout
    assert "please restart the printer" in full.stdout
    assert "hidden" not in full.stdout


def test_tickets_show_json_gives_the_received_text_only_when_asked(ticket: Mailroom) -> None:
    assert reply_on(ticket, "gmail_sv_top") == "reply CID-1000"
    plain = ticket.show("CID-1000")["articles"]
    assert all("received_text" not in a and "hidden_lines" not in a for a in plain)
    first, reply = ticket.json("tickets", "show", "CID-1000", "--quoted")["articles"]
    assert reply["text"].startswith("Hej,")  # the contract's fields as before
    assert "please restart the printer" in reply["received_text"]
    assert reply["received_text"].startswith("Hej,")
    assert first["received_text"] == "Der Drucker druckt nicht."
    assert (first["hidden_lines"], reply["hidden_lines"]) == (0, 5)


def test_a_confirmation_in_an_html_reply_is_read_above_the_quote(ticket: Mailroom) -> None:
    deliver = make_mail(
        subject="Re: [CID-1000] Drucker", body="#deliver\n\nErledigt.", sender=AGENT
    )
    assert ticket.ingest(deliver) == "reply CID-1000"
    # The quote asks whether the printer still does not print: not the customer's words.
    body = (
        '<div dir="ltr"><div>OK danke!</div></div><div class="gmail_quote">'
        '<div dir="ltr" class="gmail_attr">Op ma 5 dec 2026 om 10:12 schreef Support:</div>'
        '<blockquote class="gmail_quote"><div>Druckt der Drucker noch nicht? Dann '
        "bitte melden.</div></blockquote></div>"
    )
    assert ticket.ingest(html_reply(body, "Re: [CID-1000] Drucker")) == "reply CID-1000"
    assert ticket.show("CID-1000")["status"] == "closed"
