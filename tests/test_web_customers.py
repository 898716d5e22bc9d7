"""Customers on the web desk: signed in by a link mailed to them, they see their own requests
and nobody else's, read them without staff's internal notes, reply with files, confirm a
delivered request or say it is not solved, and open a new one; each is stored and answered
as the same mail would be."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from string import Formatter
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from mailgate.config import SecurityConfig, TicketsConfig
from mailgate.desk.customers import add_contingent
from mailgate.store.models import (
    Article,
    Attachment,
    Contact,
    Organisation,
    Outbox,
    Ticket,
    TicketReference,
)
from mailgate.web.customer_pages import REFERENCE_LINE
from mailgate.web.words import LANGUAGES, WORDS, browser_language, language
from tests.daemon_harness import SUPPORT, connect, write_toml
from tests.helpers import parsed, poll
from tests.mails import make_mail
from tests.test_cli import mailgate
from tests.web_desk import AGENT, Desk, web_desk

ALICE, BERT = "alice@acme.example", "bert@other.example"
PATTERN = r"(?i)\b(?:order number|bestellnummer):\s*(\S+)"


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    tickets = dataclasses.replace(TicketsConfig(), reference_patterns=[PATTERN])
    with web_desk(tmp_path, tickets=tickets) as running:
        running.add_agent()
        with connect(running.daemon.address) as client:
            for address, subject, name in (
                (ALICE, "Printer broken", "scan.pdf"),
                (BERT, "Contract question", "contract.pdf"),
            ):
                file = (name, "application/pdf", b"%PDF-1.4 " + address.encode())
                mail = make_mail(subject=subject, sender=address, attachments=(file,))
                client.sendmail(address, [SUPPORT], mail)
        poll(lambda: len(rows(running, Ticket)) == 2, what="both tickets")
        # Sent after the tickets' commit: the tests read the links in them.
        poll(lambda: len(mails(running, "acknowledgement")) == 2, what="both acknowledgements")
        yield running  # type: ignore[misc]


def rows(desk: Desk, model: Any) -> list[Any]:
    with desk.daemon.ctx.store.session() as session:
        return list(session.exec(select(model).order_by(col(model.id))))


def token_of(page: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def customer_signs_in(desk: Desk, client: httpx.Client, address: str) -> None:
    link = desk.ask_for_link(client, address)
    signed = client.post(link, headers=desk.origin)
    assert (signed.status_code, signed.headers["location"]) == (303, "/my")


def staff_writes(desk: Desk, **data: str) -> None:
    """The agent, on the web desk too, on Alice's ticket CID-1000."""
    with desk.client() as agent:
        desk.sign_in(agent)
        fields = desk.form_fields(agent, "CID-1000")
        sent = agent.post("/desk/tickets/CID-1000/mail", data={**fields, **data},
                          headers=desk.origin)  # fmt: skip
        assert sent.status_code == 303, sent.text


def test_a_customer_sees_their_requests_only_and_no_internal_note(desk: Desk) -> None:
    staff_writes(desk, text="Her printer is the old model; vendor asked.", kind="note")
    staff_writes(desk, text="Hello Alice,\n\nplease restart the printer.", kind="answer")
    with desk.client() as alice, desk.client() as bert:
        customer_signs_in(desk, alice, ALICE)
        customer_signs_in(desk, bert, BERT)
        mine = alice.get("/my").text
        assert "CID-1000" in mine and "Printer broken" in mine
        assert "CID-1001" not in mine and "Contract question" not in mine
        page = alice.get("/my/tickets/CID-1000").text
        assert "please restart the printer." in page and ">Support<" in page
        assert "vendor asked" not in page and "bob@example.com" not in page
        # Bert changes the number in the address bar: not found, as if there were none.
        for path in ("/my/tickets/CID-1000", "/my/tickets/CID-4711"):
            answer = bert.get(path)
            assert answer.status_code == 404 and "Not found." in answer.text
        files = {a.filename: a.id for a in rows(desk, Attachment)}
        assert alice.get(f"/my/files/{files['scan.pdf']}").content == b"%PDF-1.4 " + ALICE.encode()
        assert bert.get(f"/my/files/{files['scan.pdf']}").status_code == 404
        assert bert.get(f"/my/files/{files['contract.pdf']}").status_code == 200
        # A customer's session opens no staff page.
        assert alice.get("/desk").headers["location"] == "/sign-in"
        assert alice.get("/desk/tickets/CID-1000").headers["location"] == "/sign-in"


def test_a_reply_from_the_web_is_the_customers_mail(desk: Desk) -> None:
    with desk.client() as alice:
        customer_signs_in(desk, alice, ALICE)
        token = token_of(alice.get("/my/tickets/CID-1000").text)
        sent = alice.post(
            "/my/tickets/CID-1000/mail",
            data={"form_token": token, "text": "It shows error E42 now.", "answer": "reply"},
            files=[("files", ("photo.png", b"\x89PNG\r\n\x1a\nphoto", "image/png"))],
            headers=desk.origin,
        )
        assert sent.status_code == 303
        article = rows(desk, Article)[-1]
        assert (article.direction, article.from_addr) == ("customer", ALICE)
        assert article.text.strip() == "It shows error E42 now."
        assert rows(desk, Attachment)[-1].filename == "photo.png"
        assert "It shows error E42 now." in alice.get("/my/tickets/CID-1000").text
        forged = alice.post("/my/tickets/CID-1001/mail", headers=desk.origin,
                            data={"form_token": token, "text": "mine now"})  # fmt: skip
        assert forged.status_code == 404
        unsigned = alice.post("/my/tickets/CID-1000/mail", data={"text": "x"}, headers=desk.origin)
        assert unsigned.status_code == 403
    assert len(rows(desk, Article)) == 3


@pytest.mark.parametrize(("answer", "status"), [("solved", "closed"), ("not_solved", "working")])
def test_a_delivered_request_is_confirmed_or_not_from_the_web(
    desk: Desk, answer: str, status: str
) -> None:
    staff_writes(desk, text="The new driver fixes it.", status="delivered")
    with desk.client() as alice:
        customer_signs_in(desk, alice, ALICE)
        page = alice.get("/my/tickets/CID-1000").text
        assert 'id="solved"' in page and 'id="not-solved"' in page
        sent = alice.post(
            "/my/tickets/CID-1000/mail",
            data={"form_token": token_of(page), "answer": answer},
            headers=desk.origin,
        )
        assert sent.status_code == 303
    assert rows(desk, Ticket)[0].status == status
    if status == "closed":
        closed = poll(lambda: sorted(desk.sent.glob("*-closed.eml")), what="the closed mail")
        assert ALICE in str(parsed(closed[0].read_bytes())["To"])


def test_a_new_request_from_the_web_gets_its_number_and_order_number(desk: Desk) -> None:
    with desk.client() as alice:
        customer_signs_in(desk, alice, ALICE)
        token = token_of(alice.get("/my/new").text)
        empty = alice.post("/my/new", data={"form_token": token, "subject": "x"},
                           headers=desk.origin)  # fmt: skip
        assert empty.status_code == 422 and "needs a subject and a text" in empty.text
        sent = alice.post(
            "/my/new",
            data={
                "form_token": token,
                "subject": "Wrong invoice",
                "reference": "4711-2026",
                "text": "The invoice lists two printers; we bought one.",
            },
            headers=desk.origin,
        )
        assert (sent.status_code, sent.headers["location"]) == (303, "/my/tickets/CID-1002")
        assert "Wrong invoice" in alice.get("/my").text
    ticket = rows(desk, Ticket)[-1]
    assert (ticket.number, ticket.subject, ticket.source) == (1002, "Wrong invoice", "web")
    with desk.daemon.ctx.store.session() as session:
        references = session.exec(select(TicketReference.ticket_id, TicketReference.reference))
        assert list(references) == [(ticket.id, "4711-2026")]
    acks = poll(lambda: sorted(desk.sent.glob("*-acknowledgement.eml"))[2:],
                what="the new request's acknowledgement")  # fmt: skip
    assert "[CID-1002]" in parsed(acks[0].read_bytes())["Subject"]


def link_in(message: Any) -> str:
    """The sign-in link under a customer's mail (its text part); the HTML part has it too."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    [link] = re.findall(r"http://\S+/sign-in/\S+", text)
    assert link.replace("&", "&amp;") in html or link in html
    return link


def mails(desk: Desk, template: str) -> list[Any]:
    return [parsed(p.read_bytes()) for p in sorted(desk.sent.glob(f"*-{template}.eml"))]


def test_the_link_in_a_customers_mail_opens_their_request(desk: Desk) -> None:
    ack = next(m for m in mails(desk, "acknowledgement") if ALICE in str(m["To"]))
    link = link_in(ack)
    assert link.endswith("?to=CID-1000") and "Your request online" in ack.as_string()
    with desk.client() as alice, desk.client() as forwarded:
        assert 'id="confirm-sign-in"' in alice.get(link).text  # a scanner's GET uses nothing
        signed = alice.post(link, headers=desk.origin)
        assert (signed.status_code, signed.headers["location"]) == (303, "/my/tickets/CID-1000")
        assert "Printer broken" in alice.get("/my/tickets/CID-1000").text
        # Clicked again in the same browser, it goes on; anywhere else, it is used.
        assert alice.get(link).headers["location"] == "/my/tickets/CID-1000"
        assert forwarded.get(link).status_code == 410
        assert forwarded.post(link, headers=desk.origin).status_code == 410


def test_each_recipient_of_a_customer_mail_gets_a_link_of_their_own(tmp_path: Path) -> None:
    open_agents = dataclasses.replace(SecurityConfig(), agent_verification="none")
    with web_desk(tmp_path, security=open_agents) as desk:
        desk.add_agent()
        carol = "carol@acme.example"
        with connect(desk.daemon.address) as client:
            client.sendmail(ALICE, [SUPPORT], make_mail(subject="Printer broken", sender=ALICE))
            poll(lambda: rows(desk, Ticket), what="the ticket")
            body = f"#cc {carol}\n\nHello both,\n\nthe printer is fixed.\n"
            answer = make_mail(subject="Re: [CID-1000] Printer broken", sender=AGENT, body=body)
            client.sendmail(AGENT, [SUPPORT], answer)
        poll(lambda: mails(desk, "staff_answer")[1:], what="both copies")
        copies = mails(desk, "staff_answer")
        assert len(copies) == 2
        assert {(str(m["To"]), str(m["Cc"])) for m in copies} == {(ALICE, carol)}
        with desk.daemon.ctx.store.session() as session:
            envelopes = session.exec(
                select(Outbox.to_addrs).where(Outbox.template == "staff_answer")
            ).all()
        assert sorted(envelopes) == sorted([ALICE, carol])  # each copy to its own recipient
        links = [link_in(m) for m in copies]
        assert len(set(links)) == 2
        who = []
        for link in links:
            with desk.client() as browser:
                assert browser.post(link, headers=desk.origin).status_code == 303
                page = browser.get("/my").text
                who.append(re.findall(r'<span class="who">([^<]*)</span>', page)[0])
        assert sorted(who) == sorted([ALICE, carol])


def test_mail_carries_no_link_when_the_desk_turns_them_off(tmp_path: Path) -> None:
    with web_desk(tmp_path, customer_links=False) as desk:
        with connect(desk.daemon.address) as client:
            client.sendmail(ALICE, [SUPPORT], make_mail(subject="Printer broken", sender=ALICE))
        [ack] = poll(lambda: mails(desk, "acknowledgement"), what="the acknowledgement")
        assert "/sign-in/" not in ack.as_string()


def test_a_customer_sees_the_support_hours_bought_used_and_left(desk: Desk) -> None:
    ctx = desk.daemon.ctx
    with ctx.store.session() as session:
        alice = session.exec(select(Contact).where(Contact.email == ALICE)).one()
        org = session.get(Organisation, alice.organisation_id)
        assert org is not None
        add_contingent(session, org, 600, "ten hours", "cli", ctx.clock())
    staff_writes(desk, text="Checked the printer remotely.", minutes="90", billable="true")
    with desk.client() as alice_browser, desk.client() as bert_browser:
        customer_signs_in(desk, alice_browser, ALICE)
        customer_signs_in(desk, bert_browser, BERT)
        hours = re.search(r'<p id="hours">([^<]*)</p>', alice_browser.get("/my").text)
        assert hours is not None
        assert hours[1] == "Support hours (h:mm): 10:00 bought, 1:30 used, 8:30 left."
        assert 'id="hours"' not in bert_browser.get("/my").text  # none bought, none used
        with desk.client() as agent:  # billable time for Bert, whose organisation bought none
            desk.sign_in(agent)
            fields = desk.form_fields(agent, "CID-1001")
            data = {**fields, "kind": "note", "text": "Call.", "minutes": "30", "billable": "true"}
            assert agent.post("/desk/tickets/CID-1001/mail", data=data,
                              headers=desk.origin).status_code == 303  # fmt: skip
        used = re.search(r'<p id="hours">([^<]*)</p>', bert_browser.get("/my").text)
        assert used is not None and used[1] == "Billable support time so far (h:mm): 0:30."


def test_a_customer_is_signed_out_everywhere_by_the_desk(desk: Desk) -> None:
    [ack] = [m for m in mails(desk, "acknowledgement") if ALICE in str(m["To"])]
    unused = link_in(ack)
    with desk.client() as alice:
        customer_signs_in(desk, alice, ALICE)
        config = write_toml(desk.daemon.config)
        done = mailgate("customers", "sign-out", ALICE.upper(), config=config)
        assert done.returncode == 0 and f"{ALICE}: 1 links revoked, 1 sessions ended" in done.stdout
        assert alice.get("/my").headers["location"] == "/sign-in"
        revoked = alice.get(unused)
        assert revoked.status_code == 410 and "was revoked" in revoked.text
    unknown = mailgate("customers", "sign-out", "nobody@example.com", config=config)
    assert unknown.returncode == 65 and "no contact nobody@example.com" in unknown.stderr


CLAIRE, JONAS = "claire@client.example", "jonas@firma.example"
FRENCH_MAIL = (
    "Bonjour,\n\nnotre imprimante n'imprime plus depuis hier. Pouvez-vous nous aider ?\n\n"
    "Cordialement\nClaire\n"
)
GERMAN_MAIL = "Hallo,\n\nunser Drucker druckt nicht mehr. Bitte helfen Sie uns.\n\nDanke\nJonas\n"


def test_each_customer_reads_the_pages_in_the_language_of_their_first_mail(desk: Desk) -> None:
    with connect(desk.daemon.address) as client:
        for address, subject, body in (
            (CLAIRE, "Imprimante en panne", FRENCH_MAIL),
            (JONAS, "Drucker defekt", GERMAN_MAIL),
        ):
            mail = make_mail(subject=subject, sender=address, body=body)
            client.sendmail(address, [SUPPORT], mail)
    poll(lambda: len(rows(desk, Ticket)) == 4, what="the French and the German ticket")
    languages = {c.email: c.language for c in rows(desk, Contact)}
    assert (languages[CLAIRE], languages[JONAS]) == ("fr", "de")
    expected = {  # the page's language, its words and the open request's status
        CLAIRE: ("CID-1002", "fr", ("Mes demandes", "Se déconnecter", "Répondre", "Envoyer"),
                 "ouvert"),
        JONAS: ("CID-1003", "de", ("Meine Anfragen", "Abmelden", "Antworten", "Senden"),
                "offen"),
        ALICE: ("CID-1000", "en", ("My requests", "Sign out", "Reply", "Send"), "open"),
    }  # fmt: skip
    # The page a mailed link opens speaks the language of whom it was mailed to (the desk's
    # default is English) and names the button as the French mail does.
    with desk.client() as browser:
        link = desk.ask_for_link(browser, CLAIRE)
        opened = browser.get(link).text
        assert '<html lang="fr">' in opened and ">Se connecter</button>" in opened
        mailed = parsed(sorted(desk.sent.glob("*-sign_in.eml"))[-1].read_bytes())
        body = mailed.get_body(("plain",))
        assert CLAIRE in str(mailed["To"]) and body is not None
        assert "« Se connecter »" in " ".join(body.get_content().split())
    for address, (cid, lang, words, status) in expected.items():
        with desk.client() as browser:
            customer_signs_in(desk, browser, address)
            page = browser.get(f"/my/tickets/{cid}").text
            assert f'<html lang="{lang}">' in page
            assert all(word in page for word in words), (address, words)
            assert f'<strong id="status">{status}</strong>' in page
            colon = "\u00a0:" if lang == "fr" else ":"  # French sets a space before it
            assert f'{colon} <strong id="status">' in page
            listed = browser.get("/my").text
            assert f'<html lang="{lang}">' in listed and f"<td>{status}</td>" in listed
    with desk.client() as claire:  # a new request's order number, as Claire would write it
        customer_signs_in(desk, claire, CLAIRE)
        form = claire.get("/my/new").text
        assert "Numéro de commande (le cas échéant)" in form
        token = token_of(form)
        data = {"form_token": token, "subject": "Facture", "reference": "4711-2026",
                "text": "La facture compte deux imprimantes."}  # fmt: skip
        assert claire.post("/my/new", data=data, headers=desk.origin).status_code == 303
    assert rows(desk, Article)[-1].text.startswith("Numéro de commande: 4711-2026\n")


def test_before_signing_in_the_pages_speak_the_browsers_language(desk: Desk) -> None:
    """Nobody is known yet: the browser's Accept-Language picks among the pages' languages,
    by its weights; one the pages do not speak leaves the desk's default (English)."""
    for accepted, lang, words in (
        ("fr-CH, fr;q=0.9, en;q=0.8", "fr", "Votre adresse e-mail"),
        ("es-ES, es;q=0.9, de;q=0.7, en;q=0.3", "de", "Ihre Mail-Adresse"),
        ("en;q=0.2, fr;q=0.5", "fr", "Recevoir un lien de connexion"),
        ("es, it;q=0.8", "en", "Your mail address"),
        ("", "en", "Your mail address"),
    ):
        with desk.client() as browser:
            page = browser.get("/sign-in", headers={"Accept-Language": accepted}).text
            assert f'<html lang="{lang}">' in page and words in page, accepted
    with desk.client() as browser:
        german = {"Accept-Language": "de-AT"}
        sent = browser.post(
            "/sign-in", data={"address": "nobody@nowhere.example"}, headers=desk.origin | german
        )
        assert '<html lang="de">' in sent.text
        assert "Ist uns diese Adresse bekannt, ist ein Anmeldelink dorthin unterwegs" in sent.text
        unknown = browser.get("/sign-in/no-such-token", headers=german)
        assert unknown.status_code == 404 and '<html lang="de">' in unknown.text
    # A mailed link's page keeps the language of whom it was mailed to (Alice: English).
    with desk.client() as browser:
        link = desk.ask_for_link(browser, ALICE)
        assert '<html lang="en">' in browser.get(link, headers={"Accept-Language": "fr"}).text


@pytest.mark.parametrize(
    ("accepted", "expected"),
    [
        ("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "de"),
        ("*, fr;q=0.1", "fr"),
        ("fr;q=0, en", "en"),
        ("fr;q=bad, de", "de"),
        ("pt-BR, es", None),
        (",,;;", None),
    ],
)
def test_browser_language_reads_an_accept_language_header(
    accepted: str, expected: str | None
) -> None:
    assert browser_language(accepted) == expected


def placeholders(text: str) -> list[str]:
    """The `{name}`s of a text, each as often as it occurs."""
    return sorted(name for _, name, _, _ in Formatter().parse(text) if name is not None)


def test_every_word_of_the_pages_is_in_each_language_with_the_same_placeholders() -> None:
    for key, texts in WORDS.items():
        assert sorted(texts) == sorted(LANGUAGES), key
        for lang in LANGUAGES:
            assert texts[lang].strip(), (key, lang)
            assert placeholders(texts[lang]) == placeholders(texts["en"]), (key, lang)
    assert sorted(REFERENCE_LINE) == sorted(LANGUAGES)
    chosen = ("fr", "fr-FR", "FR", "de", "de-AT", "en", "it", "", None)
    assert [language(c) for c in chosen] == ["fr", "fr", "fr", "de", "de", "en", "en", "en", "en"]
