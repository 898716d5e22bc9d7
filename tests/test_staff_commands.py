"""Staff commands as agents write them, through `mailgate ingest`: commands after a greeting,
`#customer` with a name, and the mails agents get back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailgate.outbound.context import Context
from tests.mails import make_mail
from tests.staffdesk import Desk, html_of, text_of, to

BOB = "bob@example.com"
ALICE = "alice@acme.example"
SUBJECT = "Re: [CID-1000] Printer broken"


@pytest.fixture
def desk(ctx: Context, tmp_path: Path) -> Desk:
    """CID-1000 from alice@acme.example; Bob, an agent without a language of his own."""
    desk = Desk(ctx, tmp_path)
    desk.agent(BOB, "Bob Builder")
    assert desk.ingest(make_mail()) == "ticket CID-1000"
    desk.new_mail()
    return desk


def last_article(desk: Desk) -> dict[str, str]:
    article: dict[str, str] = desk.ticket("CID-1000")["articles"][-1]
    return article


# --- commands after a greeting ---------------------------------------------------------------


def test_internal_after_a_greeting_keeps_the_mail_from_the_customer(desk: Desk) -> None:
    body = "Hallo Tom,\n#internal\n\nbitte die Rechnung prüfen.\n"
    assert desk.staff(BOB, SUBJECT, body) == "reply CID-1000"
    article = last_article(desk)
    assert article["direction"] == "internal"
    assert article["text"].strip() == "Hallo Tom,\n\nbitte die Rechnung prüfen."
    assert desk.new_mail() == []


def test_commands_between_greeting_and_text_are_applied_and_stripped(desk: Desk) -> None:
    body = "Hallo Frau Kunde,\n\n#status working #priority A\n\ndie Lieferung kommt morgen.\n"
    desk.staff(BOB, SUBJECT, body)
    shown = desk.ticket("CID-1000")
    assert (shown["status"], shown["priority"]) == ("working", "A")
    (answer,) = desk.new_mail()
    assert to(answer) == ALICE
    text = text_of(answer)
    assert "Hallo Frau Kunde,\n\ndie Lieferung kommt morgen." in text
    assert "#status" not in text and "#priority" not in text


def test_a_command_after_the_text_started_is_text(desk: Desk) -> None:
    """The rule holds (the line is text, sent as written), and the agent learns why their
    #internal and #close did nothing."""
    desk.staff(BOB, SUBJECT, "Hallo Frau Kunde,\nanbei die Rechnung.\n#internal\n#close\n")
    assert last_article(desk)["direction"] == "staff"
    assert desk.ticket("CID-1000")["status"] == "open"
    mails = desk.new_mail()
    (answer,) = [m for m in mails if to(m) == ALICE]
    assert "#internal" in text_of(answer)
    (told,) = [m for m in mails if to(m) == BOB]
    text = text_of(told)
    assert "  - #internal: after the text, so not applied and left in it as text" in text
    assert "  - #close: after the text" in text
    assert "Your text was sent to the customer." in text


# --- #customer with a name, assignment, the caller's acknowledgement --------------------------


def phoned_in(desk: Desk, customer_line: str, text: str = "Drucker druckt nicht.") -> str:
    body = f"#customer {customer_line}\n\n{text}\n"
    return desk.staff(BOB, "Anruf: Drucker", body)


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Martin Horak <martin.horak@example.com>", "Martin Horak"),
        ('"Horak, Martin" <Martin.Horak@example.com>', "Horak, Martin"),
        ("martin.horak@example.com", ""),
    ],
)
def test_customer_as_mail_clients_paste_it(desk: Desk, line: str, name: str) -> None:
    assert phoned_in(desk, line) == "ticket CID-1001"
    shown = desk.ticket("CID-1001")
    assert shown["requester"] == "martin.horak@example.com"
    assert shown["assignee"] == BOB
    (ack,) = desk.new_mail()
    assert "martin.horak@example.com" in to(ack)
    text = text_of(ack)
    assert text.startswith(f"Hello {name}," if name else "Hello,")
    assert "we have recorded your request for you" in text
    assert "thank you" not in text.lower() and "Drucker druckt nicht" not in text
    # Not a reply to the agent's mail, which the customer never saw.
    assert ack["In-Reply-To"] is None


def test_customer_contact_gets_the_name(desk: Desk) -> None:
    phoned_in(desk, "Martin Horak <martin.horak@example.com>")
    reply = make_mail(
        sender="martin.horak@example.com", subject="Re: [CID-1001] Anruf: Drucker", body="Danke."
    )
    desk.new_mail()
    desk.ingest(reply)
    (notification,) = desk.new_mail()
    assert to(notification) == BOB
    assert "Martin Horak" in text_of(notification)


def test_caller_acknowledgement_in_german(ctx: Context, tmp_path: Path) -> None:
    desk = Desk(ctx, tmp_path, '[tickets]\ndefault_language = "de"\n')
    desk.agent(BOB, "Bob Builder")
    assert phoned_in(desk, "Martin Horak <martin.horak@example.com>") == "ticket CID-1000"
    (ack,) = desk.new_mail()
    text = text_of(ack)
    assert text.startswith("Guten Tag Martin Horak,")
    assert "wie mit Ihnen besprochen, haben wir Ihr Anliegen für Sie aufgenommen" in text
    assert "Vielen Dank" not in text and "vielen Dank" not in text


def test_routing_to_the_customers_agent_wins_and_tells_them(ctx: Context, tmp_path: Path) -> None:
    desk = Desk(ctx, tmp_path)
    desk.agent(BOB, "Bob Builder")
    desk.agent("carol@example.com", "Carol Care")
    sheet = tmp_path / "customers.csv"
    sheet.write_text(
        "organisation,email,domain,responsible agent\n"
        "Horak GmbH,martin.horak@horak.example,horak.example,carol@example.com\n",
        encoding="utf-8",
    )
    assert desk.cli("customers", "import", str(sheet)).returncode == 0
    assert phoned_in(desk, "Martin Horak <martin.horak@horak.example>") == "ticket CID-1000"
    assert desk.ticket("CID-1000")["assignee"] == "carol@example.com"
    sent = {to(m): m for m in desk.new_mail()}
    assert set(sent) == {"martin.horak@horak.example", "carol@example.com"}
    assert "Drucker druckt nicht." in text_of(sent["carol@example.com"])


def test_a_name_without_an_address_is_refused(desk: Desk) -> None:
    assert phoned_in(desk, "Martin Horak") == "ignored: staff mail opened no ticket " + (
        "(no #customer line, or not verified)"
    )
    (error,) = desk.new_mail()
    assert to(error) == BOB
    assert '#customer: "Martin Horak" is not one e-mail address' in text_of(error)


def test_cc_as_mail_clients_paste_it(desk: Desk) -> None:
    body = "#cc Carol Smith <carol@acme.example>\n\nWe will replace the printer.\n"
    desk.staff(BOB, SUBJECT, body)
    (answer,) = desk.new_mail()
    assert "carol@acme.example" in str(answer["Cc"])


# --- error mails to agents: their language, and only what happened ---------------------------


def error_to(desk: Desk, agent: str = BOB) -> str:
    (error,) = [m for m in desk.new_mail() if to(m) == agent]
    return text_of(error)


def test_error_mail_says_what_was_applied_and_that_the_answer_went_out(desk: Desk) -> None:
    body = "#status working #priority X #assign nobody\n\nWe are on it.\n"
    desk.staff(BOB, SUBJECT, body)
    assert desk.ticket("CID-1000")["status"] == "working"
    mails = desk.new_mail()
    (answer,) = [m for m in mails if to(m) == ALICE]
    assert "We are on it." in text_of(answer)
    (error,) = [m for m in mails if to(m) == BOB]
    text = text_of(error)
    assert str(error["Subject"]) == "[CID-1000] Commands not applied: Printer broken"
    assert '  - #priority: "X" is not a priority (A, B, C)' in text
    assert '  - #assign nobody: no active agent is called "nobody"' in text
    assert "These commands were applied:\n\n  - #status working\n" in text
    assert "Your text was sent to the customer." in text
    assert "stored as usual" not in text and "other commands were applied" not in text


@pytest.mark.parametrize("typed", ["#interal", "#internl", "#note", "#privat"])
def test_an_unknown_command_keeps_the_text_from_the_customer(desk: Desk, typed: str) -> None:
    """A mistyped #internal must not send colleagues' words to the customer."""
    body = f"{typed}\nThe customer always pays late: ship only once paid.\n"
    assert desk.staff(BOB, SUBJECT, body) == "reply CID-1000"
    article = last_article(desk)
    assert (article["direction"], article["note"]) == (
        "internal",
        "not sent: a command was not understood",
    )
    mails = desk.new_mail()
    assert [to(m) for m in mails] == [BOB]  # the command error alone: nothing to Alice
    text = text_of(mails[0])
    assert f"  - {typed}: unknown command" in text
    assert "Your text was NOT sent to the customer: a command was not understood" in text
    assert "Your text was sent" not in text


def test_a_known_command_with_a_wrong_value_still_sends_the_answer(desk: Desk) -> None:
    """What the agent meant is clear: the answer goes, the command is refused."""
    desk.staff(BOB, SUBJECT, "#priority Z\n\nThe part is ordered.\n")
    mails = desk.new_mail()
    (answer,) = [m for m in mails if to(m) == ALICE]
    assert "The part is ordered." in text_of(answer)
    assert "Your text was sent to the customer." in error_to_text(mails)


def error_to_text(mails: list[Any]) -> str:
    (error,) = [m for m in mails if to(m) == BOB]
    return text_of(error)


def test_error_mail_in_the_agents_language(ctx: Context, tmp_path: Path) -> None:
    desk = Desk(ctx, tmp_path)  # the desk writes English
    desk.agent("bea@example.com", "Bea Berger", "de")
    assert desk.ingest(make_mail()) == "ticket CID-1000"
    desk.new_mail()
    body = "Hallo Bea,\n#intern #prio X #zeit 2 frei\n\nBitte Rechnung prüfen.\n"
    desk.staff("bea@example.com", SUBJECT, body)
    (error,) = [m for m in desk.new_mail() if to(m) == "bea@example.com"]
    text = text_of(error)
    assert "erwartet wird eine Priorität" in html_of(error)
    assert text.startswith("Guten Tag,")
    assert '  - #prio: "X" passt nicht, erwartet wird eine Priorität (A, B, C)' in text
    assert '  - #zeit: "2" hat keine Einheit (2m oder 2h?)' in text
    assert "Diese Befehle wurden ausgeführt:\n\n  - #intern\n" in text
    assert "Ihr Text wurde als interner Kommentar am Ticket gespeichert" in text
    assert "is not" not in text and "were applied" not in text


def test_error_mail_for_an_unverified_agent_mail_does_not_contradict_itself(desk: Desk) -> None:
    raw = make_mail(sender=BOB, subject=SUBJECT, body="#close\n\nDone.\n")  # no verification
    assert desk.ingest(raw) == "reply CID-1000"
    assert desk.ticket("CID-1000")["status"] == "open"
    text = error_to(desk)
    assert "could not be\nverified as yours, so none of its commands were applied:" in text
    assert "  - your mail was not verified (" in text
    assert "kept on the ticket as an internal note" in text
    assert "were applied" not in text.replace("none of its commands were applied", "")
    assert "No other command" not in text and "Your text was sent" not in text


def test_error_mail_for_staff_mail_that_opened_no_ticket(ctx: Context, tmp_path: Path) -> None:
    desk = Desk(ctx, tmp_path, '[tickets]\ndefault_language = "de"\n')
    desk.agent(BOB, "Bob Builder")  # no language of his own: the desk's
    assert desk.staff(BOB, "Rückruf", "#prio A\n\nBitte zurückrufen.\n").startswith("ignored")
    text = error_to(desk)
    assert 'Ihre Mail "Rückruf" hat kein Ticket eröffnet:' in text
    assert "#kunde ADRESSE oben in die Mail" in text
    assert "Es wurde kein Ticket eröffnet und Ihre Mail keinem Ticket zugeordnet" in text
    assert "gespeichert" not in text and "ausgeführt:" not in text
