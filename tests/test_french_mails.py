"""A French customer is answered in French: the language of their first mail picks the shipped
French templates, through ingest on a desk, from the acknowledgement to the closed mail;
German and English customers on the same desk keep theirs."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.mails import make_mail
from tests.staff_desk import AGENT, Desk

CLAIRE = "claire.martin@client.example"
HANS = "hans.meier@kunde.example"
BOB = "bob.smith@customer.example"

FRENCH_REQUEST = (
    "Bonjour,\n\nje n'ai pas reçu la facture de novembre.\n\nCordialement\nClaire Martin\n"
)
FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
    "octobre", "novembre", "décembre",
)  # fmt: skip


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    """CID-1000: Claire's request about a missing invoice, written in French."""
    desk = Desk(tmp_path)
    request = make_mail(
        subject="Facture de novembre",
        body=FRENCH_REQUEST,
        sender=f"Claire Martin <{CLAIRE}>",
        message_id="request-1@client.example",
    )
    assert "CID-1000" in desk.ingest(request)
    return desk


def text_of(msg: EmailMessage) -> str:
    """The plain part, its CRLF line ends (as sent) read as newlines."""
    part = msg.get_body(("plain",))
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]


def html_of(msg: EmailMessage) -> str:
    return str(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]


def flat(text: str) -> str:
    """Line breaks of the wrapped plain text as spaces."""
    return " ".join(text.split())


def sentences(text: str) -> set[str]:
    """The sentences and headings of a mail with three words or more."""
    parts = (p.strip() for p in re.split(r"[.:;!?\n]", flat_lines(text)))
    return {p for p in parts if len(p.split()) >= 3}


def flat_lines(text: str) -> str:
    # Paragraphs are wrapped: join their lines, keep blank lines as breaks.
    return "\n".join(" ".join(block.split()) for block in text.split("\n\n"))


def status(desk: Desk, cid: str) -> str:
    return str(json.loads(desk.cli("tickets", "show", cid, "--format", "json"))["status"])


def on_the_ticket(desk: Desk, sender: str, prefix: str, body: str) -> None:
    """A mail on CID-1000 (each with its own Message-ID): an agent's answer, commands first,
    or the customer's reply."""
    mail = make_mail(subject=f"{prefix}: [CID-1000] Facture de novembre", body=body, sender=sender)
    assert "CID-1000" in desk.ingest(mail)


def agent_mail(desk: Desk, body: str) -> None:
    on_the_ticket(desk, f"Jana Schmidt <{AGENT}>", "AW", body)


def customer_reply(desk: Desk, body: str) -> None:
    on_the_ticket(desk, f"Claire Martin <{CLAIRE}>", "RE", body)


def test_a_french_request_is_acknowledged_in_french(desk: Desk, tmp_path: Path) -> None:
    [ack] = desk.sent_to(CLAIRE)
    assert ack["Subject"] == "[CID-1000] Facture de novembre"
    text = text_of(ack)
    assert text.startswith("Bonjour Claire Martin,\n")
    said = flat(text)
    assert "Nous vous remercions de votre message." in said
    assert "enregistré sous le numéro de ticket CID-1000" in said
    assert "Merci de conserver [CID-1000] dans l'objet" in said
    assert "Cordialement,\nVotre équipe support" in text
    assert "Ce message a été envoyé automatiquement." in text
    html = html_of(ack)
    assert '<html lang="fr">' in html and "Prochaines étapes" in html
    assert "Cordialement,<br>Votre équipe support" in html

    # Bob, on the same desk, writes English: none of the sentences of his English
    # acknowledgement are left in Claire's.
    english = make_mail(body="Hello, our printer does not print.", sender=f"Bob <{BOB}>")
    assert "CID-1001" in desk.ingest(english)
    [bobs] = desk.sent_to(BOB)
    english_sentences = sentences(text_of(bobs))
    assert "thank you for getting in touch" in english_sentences
    assert not english_sentences & sentences(text), english_sentences & sentences(text)
    assert "Kind regards" not in html and "How to reply" not in html


def test_the_delivered_mail_is_french_and_names_french_confirm_words(desk: Desk) -> None:
    agent_mail(desk, "#deliver\n\nBonjour,\n\nla facture vous a été renvoyée ce matin.\n")
    assert status(desk, "CID-1000") == "delivered"
    [asked] = [m for m in desk.sent_to(CLAIRE) if "confirmer" in text_of(m)]
    said = flat(text_of(asked))
    assert "Nous pensons que votre demande CID-1000 (« Facture de novembre ») est" in said
    assert "Pourriez-vous nous le confirmer ?" in said
    assert "répondez à cet e-mail avec « ok » en première ligne (nous comprenons aussi :" in said
    assert "c'est bon" in said and "ça marche" in said and "c'est parfait" in said
    # Only the words a French reader knows: not the German or English ones.
    assert "bestätigt" not in said and "confirmed" not in said and "alles klar" not in said
    html = html_of(asked)
    assert "Pourriez-vous nous le confirmer ?" in html and "ça marche" in html
    assert "bestätigt" not in html and "confirmed" not in html


def test_a_french_confirmation_closes_and_the_closed_mail_is_french(desk: Desk) -> None:
    agent_mail(desk, "#deliver\n\nLa facture vous a été renvoyée.\n")
    before = len(desk.sent_to(CLAIRE))
    customer_reply(desk, "Merci, c'est parfait.\n")
    assert status(desk, "CID-1000") == "closed"
    [closed] = desk.sent_to(CLAIRE)[before:]
    said = flat(text_of(closed))
    assert "Votre ticket CID-1000 (« Facture de novembre ») est désormais fermé." in said
    assert "Nous vous remercions de votre patience." in said
    assert "le ticket sera alors rouvert" in said
    assert "is now closed" not in said
    assert "est désormais fermé" in html_of(closed)


def test_a_hold_names_the_day_in_french(desk: Desk) -> None:
    """The resubmission day written out as a French reader writes it: "1er mars 2027"."""
    first = (date.today().replace(day=1) + timedelta(days=70)).replace(day=1)
    agent_mail(desk, f"#hold {first.isoformat()}\n\nNous attendons le service comptable.\n")
    assert status(desk, "CID-1000") == "hold"
    [answer] = [m for m in desk.sent_to(CLAIRE) if "comptable" in text_of(m)]
    said = flat(text_of(answer))
    day = f"1er {FRENCH_MONTHS[first.month - 1]} {first.year}"
    assert f"Nous reviendrons vers vous au sujet de votre demande le {day}." in said
    assert "Statut : ouvert → en attente" in said
    assert f"le <strong>{day}</strong>" in html_of(answer)


def test_german_and_english_customers_keep_their_languages(desk: Desk) -> None:
    german = make_mail(
        subject="Drucker defekt",
        body="Hallo, unser Drucker druckt nicht. Bitte helfen Sie uns, danke!",
        sender=f"Hans Meier <{HANS}>",
    )
    english = make_mail(
        subject="Printer broken",
        body="Hello, our printer does not print. Could you please help?",
        sender=f"Bob Smith <{BOB}>",
    )
    assert "CID-1001" in desk.ingest(german)
    assert "CID-1002" in desk.ingest(english)
    [hans] = desk.sent_to(HANS)
    assert text_of(hans).startswith("Guten Tag Hans Meier,\n")
    assert "Mit freundlichen Grüßen" in text_of(hans) and '<html lang="de">' in html_of(hans)
    [bob] = desk.sent_to(BOB)
    assert text_of(bob).startswith("Hello Bob Smith,\n")
    assert "Kind regards" in text_of(bob) and '<html lang="en">' in html_of(bob)
    [claire] = desk.sent_to(CLAIRE)
    assert text_of(claire).startswith("Bonjour Claire Martin,\n")


@pytest.mark.parametrize(
    "body",
    [
        "Hola, la impresora de la oficina no funciona desde el lunes. ¿Me pueden ayudar? "
        "Les agradezco que me respondan pronto, es que tenemos mucho trabajo. Saludos",
        "Buongiorno, la stampante non funziona più, ma il toner è nuovo. Le chiedo se mi può "
        "aiutare, è che abbiamo molto lavoro. Grazie e cordiali saluti",
        "Olá, a impressora não funciona desde segunda, mas o toner é novo. Que devo fazer? "
        "Mais uma vez obrigado. Cumprimentos",
    ],
)
def test_spanish_italian_and_portuguese_are_not_taken_for_french(desk: Desk, body: str) -> None:
    """Their articles and "que" are French words too: such a writer gets the desk's default
    language, as before French was shipped, not French."""
    writer = "maria.lopez@cliente.example"
    assert "CID-1001" in desk.ingest(make_mail(body=body, sender=f"Maria <{writer}>"))
    [ack] = desk.sent_to(writer)
    assert '<html lang="fr">' not in html_of(ack) and "Bonjour" not in text_of(ack)


def test_an_agent_types_the_commands_in_french(desk: Desk) -> None:
    """The French names of the statuses the mails show, and French command words, do what
    the English ones do; nothing comes back as not applied."""
    agent_mail(desk, "#statut en attente 20.12.2026\n#temps 20m facturable\n\nPièce commandée.\n")
    assert status(desk, "CID-1000") == "hold"
    agent_mail(desk, "#statut résolu\n\nLa pièce est arrivée et montée.\n")
    assert status(desk, "CID-1000") == "delivered"
    shown = json.loads(desk.cli("tickets", "show", "CID-1000", "--format", "json"))
    assert shown["time"] == {"billable_minutes": 20, "free_minutes": 0}
    assert not [m for m in desk.sent_to(AGENT) if "not applied" in str(m["Subject"])]


def test_a_french_list_request_gets_the_open_tickets_in_french(desk: Desk) -> None:
    """ "Mes demandes" as the subject asks for the list, as "Meine Tickets" does: no ticket,
    the open requests in French, the sheet's statuses too."""
    asked = make_mail(subject="Mes demandes", body="Bonjour,\n", sender=f"Claire <{CLAIRE}>")
    assert "CID-1001" not in desk.ingest(asked)
    listed = desk.sent_to(CLAIRE)[-1]
    said = flat(text_of(listed))
    assert "CID-1000" in said and "Facture de novembre" in said and "ouvert" in said
    assert '<html lang="fr">' in html_of(listed)
    assert desk.cli("tickets", "list").count("CID-") == 1
