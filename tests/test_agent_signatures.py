"""An agent's own signature never reaches the customer: the one they registered, or the one
learned from their answers, is cut wherever their mail client put it at the end, and the
customer reads the agent's text and the desk's closing once."""

from __future__ import annotations

import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.reading.signatures import cut_closing_block, is_signed
from tests.daemon_harness import SUPPORT
from tests.mails import make_mail
from tests.staff_desk import AGENT, CUSTOMER, Desk, answer_to_customer
from tests.test_signatures import agent_mail as signed_mail

SIGNATURE = (
    "Jana Schmidt\nSupport-Team Drucker\nBeispiel GmbH | Musterstraße 1 | 12345 Berlin\n"
    "Tel. +49 30 1234567\nwww.beispiel.example\n"
)
SIGNATURE_HTML = (
    "<html><body><p><b>Jana Schmidt</b><br>Support-Team Drucker</p><p>Beispiel GmbH | "
    "Musterstraße 1 | 12345 Berlin<br>Tel. +49 30 1234567<br>"
    '<a href="https://www.beispiel.example/">www.beispiel.example</a></p></body></html>'
)
SAID = "Hallo Frau Kunde,\n\nbitte installieren Sie den Treiber neu."
CLOSING = "Mit freundlichen Grüßen\nIhr Support-Team"
QUOTED = "\n\nAm 02.11.26 um 10:00 schrieb Alice Kunde:\n> Unser Drucker druckt nicht.\n"
# Outlook: the signature under the greeting, no delimiter; its plain text made from the HTML,
# links written out, the lines wrapped where the HTML had paragraphs.
OUTLOOK_TEXT = (
    f"{SAID}\n\nMit freundlichen Grüßen\n\nJana Schmidt\nSupport-Team Drucker\n\n"
    "Beispiel GmbH | Musterstraße 1 | 12345 Berlin\nTel. +49 30 1234567\n"
    "www.beispiel.example<https://www.beispiel.example/>\n\n"
    "Von: Alice Kunde <alice@acme.example>\nGesendet: Montag, 2. November 2026 10:00\n"
    f"An: {SUPPORT}\nBetreff: Drucker\n\nUnser Drucker druckt nicht.\n"
)
OUTLOOK_HTML = (
    "<html><body><p>Hallo Frau Kunde,</p><p>bitte installieren Sie den Treiber neu.</p>"
    "<p>Mit freundlichen Grüßen</p><p><b>Jana Schmidt</b><br>Support-Team Drucker</p>"
    "<p>Beispiel GmbH | Musterstraße 1 | 12345 Berlin<br>Tel. +49 30 1234567<br>"
    '<a href="https://www.beispiel.example/">www.beispiel.example</a></p>'
    '<div style="border-top:solid #E1E1E1 1.0pt"><p><b>Von:</b> Alice Kunde '
    "&lt;alice@acme.example&gt;<br><b>Gesendet:</b> Montag, 2. November 2026 10:00<br>"
    f"<b>An:</b> {SUPPORT}<br><b>Betreff:</b> Drucker</p></div>"
    "<p>Unser Drucker druckt nicht.</p></body></html>"
)
THUNDERBIRD_TEXT = f"{SAID}\n\nViele Grüße\n\n-- \n{SIGNATURE}{QUOTED}"
PHONE_TEXT = f"{SAID}\n\nVon meinem iPhone gesendet\n{QUOTED}"
# From the phone, greeting and name typed by hand: the greeting gives way all the same.
PHONE_GREETING_TEXT = f"{SAID}\n\nViele Grüße\nJana\n\nGet Outlook for iOS\n{QUOTED}"
# Rewrapped by a client at 40 characters, greeting and name on one line.
WRAPPED_TEXT = (
    f"{SAID}\n\nBeste Grüße, Jana Schmidt\nSupport-Team\nDrucker Beispiel GmbH |\n"
    "Musterstraße 1 | 12345 Berlin Tel. +49\n30 1234567 www.beispiel.example\n" + QUOTED
)
PRIVATE = ("Musterstraße", "1234567", "Beispiel GmbH", "beispiel.example", "Jana", "iPhone", "iOS")


def agent_mail(text: str | None, html: str | None = None, n: int = 1) -> EmailMessage:
    return signed_mail(text, html, n, subject="Drucker")


def open_ticket(desk: Desk) -> None:
    german = "Guten Tag,\n\nunser Drucker druckt nicht mehr. Können Sie bitte helfen?\n"
    mail = make_mail(subject="Drucker", body=german, sender=f"Alice Kunde <{CUSTOMER}>")
    assert "CID-1000" in desk.ingest(mail)


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    """CID-1000 from a German customer; Jana's signature registered from a file."""
    desk = Desk(tmp_path)
    path = tmp_path / "signature.txt"
    path.write_text(SIGNATURE, encoding="utf-8")
    assert desk.cli("agents", "signature", AGENT, "--file", str(path)).startswith("registered")
    open_ticket(desk)
    return desk


def customer_reads(desk: Desk) -> tuple[str, str]:
    mail = answer_to_customer(desk)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def assert_text_and_closing_once(desk: Desk) -> None:
    text, html = customer_reads(desk)
    assert text.startswith(f"{SAID}\n\n{CLOSING}\n"), text
    assert text.count("Grüße") == 1 and html.count("Grüße") == 1
    assert "bitte installieren Sie den Treiber neu." in html and "Ihr Support-Team" in html
    for private in PRIVATE:
        assert private not in text and private not in html


@pytest.mark.parametrize(
    ("text", "html"),
    [
        (OUTLOOK_TEXT, OUTLOOK_HTML),
        (None, OUTLOOK_HTML),
        (THUNDERBIRD_TEXT, None),
        (PHONE_TEXT, None),
        (PHONE_GREETING_TEXT, None),
        (WRAPPED_TEXT, None),
    ],
    ids=["outlook", "outlook-html-only", "thunderbird", "phone", "phone-greeting", "rewrapped"],
)
def test_registered_signature_gives_way_to_the_desks_closing(
    desk: Desk, text: str | None, html: str | None
) -> None:
    desk.ingest(agent_mail(text, html))
    assert_text_and_closing_once(desk)


def test_signature_registered_from_outlooks_html_file(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "Jana (jana.schmidt@example.com).htm"
    path.write_text(SIGNATURE_HTML, encoding="utf-8")
    assert desk.cli("agents", "signature", AGENT, "--file", str(path)).startswith("registered")
    shown = desk.cli("agents", "signature", AGENT)
    assert shown.startswith("registered:\nJana Schmidt\nSupport-Team Drucker\n")
    desk.ingest(agent_mail(OUTLOOK_TEXT, OUTLOOK_HTML))
    assert_text_and_closing_once(desk)


def test_a_line_like_the_signatures_first_stays_in_the_text(desk: Desk) -> None:
    said = (
        "Hallo Frau Kunde,\n\nIhre Ansprechpartnerin ist ab jetzt\nJana Schmidt\n"
        "Support-Team Drucker\n\nSie ruft Sie morgen an."
    )
    desk.ingest(agent_mail(f"{said}\n\nViele Grüße\n{SIGNATURE}{QUOTED}"))
    text, _ = customer_reads(desk)
    assert text.startswith(f"{said}\n\n{CLOSING}\n"), text
    assert "Musterstraße" not in text


def test_a_signature_that_is_not_at_the_end_is_not_cut(desk: Desk) -> None:
    said = f"Hallo Frau Kunde,\n\nmeine Daten:\n{SIGNATURE}\nDer Techniker kommt morgen."
    desk.ingest(agent_mail(said + QUOTED))
    text, _ = customer_reads(desk)
    assert text.startswith(f"{said}\n\n{CLOSING}\n"), text


def test_a_command_mail_with_only_the_signature_sends_no_answer(desk: Desk) -> None:
    desk.ingest(agent_mail(f"#deliver\n\nMit freundlichen Grüßen\n{SIGNATURE}{QUOTED}"))
    sent = desk.sent_to(CUSTOMER)
    assert [m for m in sent if m["Auto-Submitted"] is None] == []  # no answer of a signature
    assert any("erledigt" in str(m.get_body(("plain",))) for m in sent)  # the delivered mail


def test_signature_learned_from_three_answers(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    open_ticket(desk)
    for n in range(1, 4):
        desk.ingest(agent_mail(f"Antwort {n}: bitte warten.\n\nViele Grüße\n{SIGNATURE}", n=n))
    learned = desk.cli("agents", "signature", AGENT)
    assert learned.startswith("learned:\nViele Grüße\nJana Schmidt\nSupport-Team Drucker\n")
    desk.ingest(agent_mail(OUTLOOK_TEXT, OUTLOOK_HTML, n=4))
    last = [m for m in desk.sent_to(CUSTOMER) if m["Auto-Submitted"] is None][-1]
    text = last.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert text.startswith(f"{SAID}\n\n{CLOSING}\n"), text
    assert "Musterstraße" not in text and "Jana" not in text


def test_answers_ending_alike_only_in_greeting_and_name_teach_nothing(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    open_ticket(desk)
    for n in range(1, 5):
        desk.ingest(agent_mail(f"Antwort {n}: bitte warten.\n\nViele Grüße\nJana", n=n))
    assert desk.cli("agents", "signature", AGENT) == "no signature registered or learned yet\n"
    last = [m for m in desk.sent_to(CUSTOMER) if m["Auto-Submitted"] is None][-1]
    assert "Viele Grüße\nJana" in last.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


def mailgate(desk: Desk, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mailgate", "-c", str(desk.config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_signature_commands_explain_what_is_wrong(desk: Desk, tmp_path: Path) -> None:
    missing = mailgate(desk, "agents", "add", "x@example.com", "--name", "X",
                       "--signature-file", str(tmp_path / "none.txt"))  # fmt: skip
    assert missing.returncode == 65 and "cannot read the signature file" in missing.stderr
    binary = tmp_path / "logo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    wrong = mailgate(desk, "agents", "signature", AGENT, "--file", str(binary))
    assert wrong.returncode == 65 and "is not UTF-8 text" in wrong.stderr
    both = mailgate(desk, "agents", "signature", AGENT, "--file", str(binary), "--clear")
    assert both.returncode == 64 and "either --file or --clear" in both.stderr
    nobody = mailgate(desk, "agents", "signature", "nobody@example.com")
    assert nobody.returncode == 65 and "no agent nobody@example.com" in nobody.stderr
    for result in (missing, wrong, both, nobody):
        assert "Traceback" not in result.stderr
    cleared = mailgate(desk, "agents", "signature", AGENT, "--clear")
    assert cleared.returncode == 0
    assert mailgate(desk, "agents", "signature", AGENT).stdout.startswith("no signature")


def test_agent_added_with_a_signature_file(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "bert.txt"
    path.write_text("-- \nBert Berger\nBeispiel GmbH\n", encoding="utf-8")
    assert desk.cli("agents", "add", "bert@example.com", "--name", "Bert",
                    "--signature-file", str(path))  # fmt: skip
    shown = desk.cli("agents", "signature", "bert@example.com")
    assert shown == "registered:\n--\nBert Berger\nBeispiel GmbH\n"
    # Notepad and Outlook on Windows write UTF-16 with a byte order mark.
    path.write_bytes("Bert Berger\r\nKundendienst Süd\r\n".encode("utf-16"))
    assert desk.cli("agents", "signature", "bert@example.com", "--file", str(path))
    shown = desk.cli("agents", "signature", "bert@example.com")
    assert shown == "registered:\nBert Berger\nKundendienst Süd\n"


# The closings of the fifteen languages: the agent's closing block is cut after the name,
# and an answer ending with one needs no second closing from the desk.
CLOSINGS = [
    "Mit freundlichen Grüßen", "Best regards", "Cordialement", "Bien à vous",
    "Cordiali saluti", "Distinti saluti", "Saludos", "Atentamente",
    "Com os melhores cumprimentos", "Atenciosamente", "Met vriendelijke groet", "Mvg",
    "Med venlig hilsen", "Vh", "Med vänliga hälsningar", "Mvh", "Ystävällisin terveisin",
    "Terveisin", "Z poważaniem", "Pozdrawiam", "S pozdravem", "С уважением", "Saygılarımla",
    "İyi çalışmalar", "Merci", "Grazie mille", "Tack", "Děkuji",
]  # fmt: skip


@pytest.mark.parametrize("closing", CLOSINGS)
def test_closing_block_in_every_language(closing: str) -> None:
    text = f"Done.\n\n{closing},\nJana Schmidt\nBeispiel GmbH\nTel. +49 30 1234567"
    assert cut_closing_block(text) == f"Done.\n\n{closing},\nJana Schmidt"
    assert is_signed(f"Done.\n\n{closing}\nJana")
