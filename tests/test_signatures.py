"""What the customer reads of an agent's answer: the answer, the greeting and the name; never
the agent's contact block or any agent's address, whichever mail client wrote it."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.reading.signatures import cut_closing_block
from tests.daemon_harness import SUPPORT
from tests.mails import make_mail
from tests.staff_desk import AGENT, CUSTOMER, Desk, answer_to_customer

PRIVATE = "jana.s@gmx.de"
QUOTED_OUTLOOK = (
    "Von: Alice Kunde <alice@acme.example>\nGesendet: Montag, 2. November 2026 10:00\n"
    f"An: {SUPPORT}\nBetreff: Printer broken\n\nOur printer does not print.\n"
)
OUTLOOK_TEXT = (
    "Hallo Frau Kunde,\n\nbitte installieren Sie den Treiber neu.\n\n"
    "Mit freundlichen Grüßen\n\nJana Schmidt\nSupport\n"
    "Beispiel GmbH | Musterstraße 1 | 12345 Berlin\nTel. +49 30 1234567\n"
    f"E-Mail: {AGENT.upper()}\nprivat: {PRIVATE}\n\n" + QUOTED_OUTLOOK
)
OUTLOOK_HTML = (
    "<html><body><p>Hallo Frau Kunde,</p><p>bitte installieren Sie den Treiber neu.</p>"
    "<p>Mit freundlichen Grüßen</p><p><b>Jana Schmidt</b><br>Support<br>"
    "Beispiel GmbH | Musterstraße 1 | 12345 Berlin<br>Tel. +49 30 1234567<br>"
    f'E-Mail: <a href="mailto:{AGENT}">{AGENT}</a><br>privat: {PRIVATE}</p>'
    '<div style="border-top:solid #E1E1E1 1.0pt"><p><b>Von:</b> Alice Kunde '
    "&lt;alice@acme.example&gt;<br><b>Gesendet:</b> Montag, 2. November 2026 10:00<br>"
    f"<b>An:</b> {SUPPORT}<br><b>Betreff:</b> Printer broken</p></div>"
    "<p>Our printer does not print.</p></body></html>"
)
THUNDERBIRD_TEXT = (
    "Hallo Frau Kunde,\n\nbitte installieren Sie den Treiber neu.\n\nViele Grüße\nJana\n\n"
    f"-- \nJana Schmidt\nBeispiel GmbH\n{AGENT}\n{PRIVATE}\n\n"
    "Am 02.11.26 um 10:00 schrieb Alice Kunde:\n> Our printer does not print.\n"
)
GMAIL_TEXT = (
    "Hi Alice,\n\nplease reinstall the driver.\n\nBest regards,\nJana Schmidt\n"
    f"Support Engineer | Beispiel GmbH\n+49 30 1234567 | {PRIVATE}\n\n"
    "On Mon, Nov 2, 2026 at 10:00 AM Alice Kunde <alice@acme.example> wrote:\n"
    "> Our printer does not print.\n"
)
GMAIL_HTML = (
    '<div dir="ltr">Hi Alice,<div><br></div><div>please reinstall the driver.</div><div><br>'
    '</div><div>Best regards,</div><div dir="ltr" class="gmail_signature">Jana Schmidt<br>'
    f"Support Engineer | Beispiel GmbH<br>+49 30 1234567 | {PRIVATE}</div></div><br>"
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Nov 2, 2026 at '
    "10:00 AM Alice Kunde &lt;alice@acme.example&gt; wrote:<br></div><blockquote "
    'class="gmail_quote">Our printer does not print.</blockquote></div>'
)


def agent_mail(
    text: str | None, html: str | None = None, n: int = 1, subject: str = "Printer broken"
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Jana Schmidt <{AGENT}>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"AW: [CID-1000] {subject}"
    msg["Message-ID"] = f"<answer-{n}@laptop.example>"
    if text is not None:
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html")
    return msg


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    desk = Desk(tmp_path)
    assert desk.cli("agents", "add", "bert@example.com", "--name", "Bert")
    assert "CID-1000" in desk.ingest(make_mail(sender=f"Alice Kunde <{CUSTOMER}>"))
    return desk


def what_the_customer_reads(desk: Desk) -> tuple[str, str, bytes]:
    mail = answer_to_customer(desk)
    raw = next(r for r, m in desk.sent() if m["Message-ID"] == mail["Message-ID"])
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n"), raw


def assert_no_contact_block(desk: Desk, greeting: str, name: str) -> str:
    text, html, raw = what_the_customer_reads(desk)
    for part in (text, html):
        assert greeting in part and name in part
        for private in ("1234567", "Musterstraße", PRIVATE, "Engineer"):
            assert private not in part
    assert AGENT not in raw.decode("ascii").lower()
    return text


@pytest.mark.parametrize(
    ("text", "html"),
    [(OUTLOOK_TEXT, OUTLOOK_HTML), (None, OUTLOOK_HTML)],
    ids=["outlook-text-and-html", "outlook-html-only"],
)
def test_outlook_closing_block_keeps_greeting_and_name(
    desk: Desk, text: str | None, html: str
) -> None:
    desk.ingest(agent_mail(text, html))
    said = assert_no_contact_block(desk, "Mit freundlichen Grüßen", "Jana Schmidt")
    assert said.startswith("Hallo Frau Kunde,\n\nbitte installieren Sie den Treiber neu.")
    assert "printer does not print" not in said


def test_thunderbird_signature_after_its_separator(desk: Desk) -> None:
    desk.ingest(agent_mail(THUNDERBIRD_TEXT))
    assert_no_contact_block(desk, "Viele Grüße\nJana", "Jana")


@pytest.mark.parametrize(("text", "html"), [(GMAIL_TEXT, GMAIL_HTML), (None, GMAIL_HTML)])
def test_gmail_signature_without_separator(desk: Desk, text: str | None, html: str) -> None:
    desk.ingest(agent_mail(text, html))
    assert_no_contact_block(desk, "Best regards,", "Jana Schmidt")


def test_the_stored_answer_is_what_the_customer_read(desk: Desk) -> None:
    desk.ingest(agent_mail(OUTLOOK_TEXT, OUTLOOK_HTML))
    shown = json.loads(desk.cli("tickets", "show", "CID-1000", "--format", "json"))
    staff = [a for a in shown["articles"] if a["direction"] == "staff"]
    assert staff[0]["text"].endswith("Mit freundlichen Grüßen\n\nJana Schmidt")


def test_no_agents_address_reaches_the_customer_whatever_the_text_says(desk: Desk) -> None:
    body = (
        f"Hallo Frau Kunde,\n\nschreiben Sie mir direkt an {AGENT} oder an meinen Kollegen "
        "Bert.Kollege@example.com... pardon, BERT@EXAMPLE.COM.\n\nJana"
    )
    desk.ingest(agent_mail(body))
    text, html, raw = what_the_customer_reads(desk)
    assert f"schreiben Sie mir direkt an {SUPPORT} oder" in text
    assert f"pardon, {SUPPORT}." in text and "Bert.Kollege@example.com" in text
    assert AGENT not in raw.decode("ascii").lower() and f"an {SUPPORT}" in html
    assert "bert@example.com" not in raw.decode("ascii").lower()


@pytest.mark.parametrize(
    "text",
    [
        "Thanks!\n\nStep 1: unplug the printer\nStep 2: plug it in again",
        "Danke\nfür Ihre Geduld\nWir melden uns morgen wieder bei Ihnen.",
        "Best regards to your team from all of us.\nJana",
        "Gruß\n\nJana\nPS: Ihr Treiber ist zu alt. Bitte laden Sie Version 2 herunter.",
        "Ihre Bestellung kam an.\nBestimmt klappt es jetzt\nmit dem neuen Treiber\nund Kabel",
    ],
)
def test_own_words_after_a_greeting_are_kept(text: str) -> None:
    assert cut_closing_block(text) == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Fixed.\n\nKind regards, Jana\nJana Schmidt | +49 30 1", "Fixed.\n\nKind regards, Jana"),
        ("Fixed.\n\nMfG\ni.A. J. Schmidt\nBeispiel GmbH", "Fixed.\n\nMfG\ni.A. J. Schmidt"),
        ("Fixed.\n\nViele Grüße\n\nJana", "Fixed.\n\nViele Grüße\n\nJana"),
        ("Fixed.\n\nBest,\nJana\nSupport\nwww.example.com", "Fixed.\n\nBest,\nJana"),
        ("Thanks again!\nJana Schmidt\nTel. 030 1234567", "Thanks again!\nJana Schmidt"),
    ],
)
def test_closing_blocks_are_cut_after_the_name(text: str, kept: str) -> None:
    assert cut_closing_block(text) == kept


def test_outlooks_rule_under_the_greeting_is_no_name() -> None:
    """Outlook's line of underscores above a quoted header block ended up under the
    agent's greeting in the customer's mail, read as the agent's name."""
    text = "Hello Alice,\n\nplease restart it.\n\nRegards, Bob\n\n" + "_" * 32 + "\nFrom x"
    assert cut_closing_block(text) == "Hello Alice,\n\nplease restart it.\n\nRegards, Bob"
