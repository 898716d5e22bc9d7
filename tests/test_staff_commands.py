"""Staff commands as agents write them, through `mailgate ingest`: commands after a greeting,
`#customer` with a name, and the mails agents get back."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.context import Context
from tests.mails import make_mail
from tests.staffdesk import Desk, text_of, to

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
    desk.staff(BOB, SUBJECT, "Hallo Frau Kunde,\nanbei die Rechnung.\n#internal\n")
    assert last_article(desk)["direction"] == "staff"
    (answer,) = desk.new_mail()
    assert "#internal" in text_of(answer)
