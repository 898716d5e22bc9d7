"""A customer confirms a delivered ticket in their own language, and a "yes, but it is still
broken" in any of them keeps it open: the default confirm words and blockers of fifteen
European languages, read through ingest as the customer's reply arrives."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.config import TicketsConfig
from mailgate.reading.confirm import confirms, words
from tests.daemon_harness import SUPPORT
from tests.mails import make_mail
from tests.staff_desk import CUSTOMER, Desk, staff_answer

QUOTE = "\n\nAm 02.11.2026 schrieb Support:\n> Bitte bestätigen Sie nicht.\n"

# Per language: a confirmation (with the greeting and sign-off people write) that closes,
# and a "yes, but still broken" that does not.
REPLIES = {
    "de": ("Hallo Frau Schmidt,\n\nerledigt, vielen Dank!\n\nViele Grüße\nAlice",
           "Passt, aber der Drucker zieht das Papier immer noch schief ein."),
    "en": ("Hello Jana,\n\nit works, thank you!\n\nKind regards\nAlice",
           "Yes, thanks, but the tray still jams."),
    "fr": ("Bonjour,\n\nc'est bon, merci beaucoup !\n\nCordialement\nAlice Dupont",
           "Ça marche, mais l'imprimante bourre toujours."),
    "it": ("Buongiorno,\n\nva bene, grazie mille.\n\nCordiali saluti\nAlice Rossi",
           "Confermo, ma la stampante si blocca ancora."),
    "es": ("Hola Jana,\n\nvale, funciona perfectamente. ¡Gracias!\n\nSaludos\nAlice",
           "Vale, gracias, pero todavía imprime en blanco."),
    "pt": ("Olá,\n\nconfirmado, obrigado pela ajuda.\n\nCom os melhores cumprimentos\nAlice",
           "Funciona, mas a impressora ainda faz barulho."),
    "nl": ("Beste Jana,\n\nakkoord, bedankt voor de snelle hulp.\n\nMet vriendelijke groet\n"
           "Alice", "Klopt, maar de printer loopt nog steeds vast."),
    "da": ("Hej Jana,\n\nbekræftet, mange tak.\n\nMed venlig hilsen\nAlice",
           "Fungerer, men printeren stopper stadig."),
    "sv": ("Hej Jana,\n\nfungerar nu, tack så mycket.\n\nMed vänliga hälsningar\nAlice",
           "Bekräftat, men skrivaren fastnar fortfarande."),
    "no": ("Hei Jana,\n\nbekreftet, tusen takk.\n\nMed vennlig hilsen\nAlice",
           "Ja, men skriveren stopper fortsatt."),
    "fi": ("Hei Jana,\n\ntoimii, kiitos paljon.\n\nYstävällisin terveisin\nAlice",
           "Vahvistan, mutta tulostin jumittaa vielä."),
    "pl": ("Dzień dobry,\n\npotwierdzam, wszystko działa. Dziękuję!\n\nZ poważaniem\nAlice",
           "Działa, ale drukarka nadal się zacina."),
    "cs": ("Dobrý den,\n\npotvrzuji, tiskárna funguje. Děkuji.\n\nS pozdravem\nAlice",
           "Funguje, ale tiskárna se stále zasekává."),
    "ru": ("Здравствуйте,\n\nподтверждаю, всё в порядке. Спасибо!\n\nС уважением\nАлиса",
           "Работает, но принтер всё ещё зажёвывает бумагу."),
    "tr": ("Merhaba,\n\ntamam, teşekkürler.\n\nSaygılarımla\nAlice",
           "Tamam ama yazıcı hâlâ kağıt sıkıştırıyor."),
}  # fmt: skip


@pytest.fixture
def delivered(tmp_path: Path) -> Desk:
    """CID-1000, delivered by the agent: the customer is asked to confirm."""
    desk = Desk(tmp_path)
    assert "CID-1000" in desk.ingest(make_mail(sender=f"Alice Kunde <{CUSTOMER}>"))
    desk.ingest(staff_answer("#deliver\n\nThe new driver fixes it."))
    assert status(desk) == "delivered"
    return desk


def reply(desk: Desk, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"Alice Kunde <{CUSTOMER}>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Re: [CID-1000] Printer broken"
    msg["Message-ID"] = "<reply-1@acme.example>"
    msg.set_content(body + QUOTE)
    assert "CID-1000" in desk.ingest(msg)


def text_of(msg: EmailMessage) -> str:
    return str(msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def status(desk: Desk) -> str:
    return str(json.loads(desk.cli("tickets", "show", "CID-1000", "--format", "json"))["status"])


@pytest.mark.parametrize("language", REPLIES)
def test_a_confirmation_in_each_language_closes(delivered: Desk, language: str) -> None:
    before = len(delivered.sent_to(CUSTOMER))
    reply(delivered, REPLIES[language][0])
    assert status(delivered) == "closed"
    [told] = delivered.sent_to(CUSTOMER)[before:]
    assert "is now closed" in text_of(told) or "ist jetzt geschlossen" in text_of(told)
    # Closed by the customer's own word: not "for want of an answer".
    assert "did not hear" not in text_of(told) and "nichts von Ihnen" not in text_of(told)


@pytest.mark.parametrize("language", REPLIES)
def test_yes_but_still_broken_in_each_language_stays_open(delivered: Desk, language: str) -> None:
    before = len(delivered.sent_to(CUSTOMER))
    reply(delivered, REPLIES[language][1])
    assert status(delivered) == "working"
    assert delivered.sent_to(CUSTOMER)[before:] == []  # nothing closed, nobody told


@pytest.mark.parametrize(
    "body",
    [
        "Ok, mail received, main tray works, maize-yellow prints fine.",  # no "ma", "mai"
        "Tak, wszystko działa, dziękuję.",
        "Akkoord, de nieuwe driver werkt prima.",
    ],
)
def test_blockers_are_whole_words(delivered: Desk, body: str) -> None:
    reply(delivered, body)
    assert status(delivered) == "closed"


def test_no_default_confirmation_holds_a_default_blocker() -> None:
    """A confirm word that held a blocker of another language would never confirm."""
    tickets = TicketsConfig()
    blockers = {tuple(words(b)) for b in tickets.confirm_blockers}
    for word in tickets.confirm_words:
        found = words(word)
        spans = {tuple(found[i : i + n]) for n in range(1, 4) for i in range(len(found))}
        assert not spans & blockers, word
        # Nor may one be taken for an opening salutation, which is skipped.
        assert confirms(f"{word}, danke", [word], []), word


def test_the_delivered_mail_names_the_words_of_its_readers_language(delivered: Desk) -> None:
    # Alice's desk mails her in English: she is asked for "ok" and shown the English words,
    # not the ninety of fifteen languages the desk understands.
    [asked] = [m for m in delivered.sent_to(CUSTOMER) if "confirm" in text_of(m)]
    text = " ".join(text_of(asked).split())
    assert 'with "ok" on the first line (we also understand: ok, confirm, confirmed, yes,' in text
    assert "bestätigt" not in text and "подтверждаю" not in text and "c'est bon" not in text
    html = str(asked.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "confirmed" in html and "bestätigt" not in html


@pytest.mark.parametrize(
    ("body", "after"),
    [
        ("Merci, c'est parfait, j'ai bien reçu la facture.", "closed"),
        ("Danke, es geht wieder!", "closed"),
        ("Vielen Dank!\nLäuft wieder.", "closed"),
        ("Thanks. All good now.", "closed"),
        ("Thank you so much, it works.", "closed"),
        ("Merci, je vais essayer demain.", "working"),  # thanks, nothing confirmed yet
        ("Danke!", "working"),
        ("Vielen Dank für die schnelle Antwort.", "working"),
        ("Danke, es geht wieder nicht.", "working"),
        ("Merci, c'est parfait, mais la facture n'est pas arrivée.", "working"),
        ("Thanks, works?", "working"),
    ],
)
def test_a_thank_you_first_is_read_past(delivered: Desk, body: str, after: str) -> None:
    """A thank-you that opens the reply is skipped in looking for the confirm word; what
    follows it, or a bare thank-you, still decides as any reply does."""
    reply(delivered, body)
    assert status(delivered) == after
