"""An agent's answer quoting what mailgate told staff, in a way mailgate cannot read as a
quote: the customer gets the answer, never the copy (the ticket's details for staff,
another person's mail, the warning about it)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate.outbound.context import Context
from tests.mails import make_mail
from tests.staffdesk import Desk, text_of, to

BOB = "bob@example.com"
ALICE = "alice@acme.example"
# No closing: the agent's closing block would otherwise end the text before any copy.
ANSWER = "Hello Alice,\n\nplease restart the printer and tell me whether it prints.\n"


@pytest.fixture
def desk(ctx: Context, tmp_path: Path) -> Desk:
    desk = Desk(ctx, tmp_path)
    desk.agent(BOB, "Bob Builder")
    assert desk.ingest(make_mail()) == "ticket CID-1000"
    desk.staff(BOB, "Re: [CID-1000] Printer broken", f"#assign {BOB}\n")
    desk.new_mail()
    # Alice writes again: Bob, the ticket's agent now, is told.
    assert desk.ingest(
        make_mail(subject="Re: [CID-1000] Printer broken", body="Still broken.")
    ) == ("reply CID-1000")
    return desk


def notification(desk: Desk) -> EmailMessage:
    (told,) = [m for m in desk.new_mail() if to(m) == BOB]
    return told


def answer_to_alice(desk: Desk) -> str:
    (answer,) = [m for m in desk.new_mail() if to(m) == ALICE]
    return text_of(answer)


# Outlook's header block in languages whose field names mailgate does not know.
HEADER_BLOCKS = {
    "hu": "________________________________\nFeladó: Support <support@example.com>\n"
    "Elküldve: 2026. november 2., hétfő 10:15\nCímzett: bob@example.com\nTárgy: {subject}\n",
    "ja": "差出人: Support <support@example.com>\n送信日時: 2026年11月2日 10:15\n"
    "宛先: bob@example.com\n件名: {subject}\n",
}


@pytest.mark.parametrize("language", HEADER_BLOCKS)
def test_a_notification_quoted_under_an_unknown_header_block_stays_with_staff(
    desk: Desk, language: str
) -> None:
    told = notification(desk)
    block = HEADER_BLOCKS[language].format(subject=told["Subject"])
    body = f"{ANSWER}\n{block}\n{text_of(told)}"
    assert desk.staff(BOB, "RE: " + str(told["Subject"]), body) == "reply CID-1000"
    text = answer_to_alice(desk)
    assert "please restart the printer and tell me whether it prints." in text
    for staff_only in ("Open tickets", "New ticket", "Feladó", "差出人", "____"):
        assert staff_only not in text


def test_a_copy_pasted_without_any_header_is_found_by_its_first_sentence(desk: Desk) -> None:
    """Someone outside the ticket wrote with its tag: what they wrote and the warning
    about them are for staff. A client that puts the original under the answer as it is."""
    notification(desk)
    stranger = make_mail(
        subject="Re: [CID-1000] Printer broken",
        sender="Mallory <mallory@evil.example>",
        body="Send me the whole history of this ticket, I am her boss.\n",
    )
    assert desk.ingest(stranger) == "reply CID-1000"
    told = notification(desk)
    body = f"{ANSWER}\n{text_of(told)}"
    desk.staff(BOB, "Re: " + str(told["Subject"]), body)
    text = answer_to_alice(desk)
    assert "please restart the printer and tell me whether it prints." in text
    assert "Mallory" not in text and "history of this ticket" not in text
    assert "WARNING" not in text


def test_an_answer_without_a_copy_is_sent_whole(desk: Desk) -> None:
    notification(desk)
    body = "Hello Alice,\n\nSubject: the printer\nStatus: ordered a new drum.\n\nBob\n"
    desk.staff(BOB, "Re: [CID-1000] Printer broken", body)
    text = answer_to_alice(desk)
    assert "Subject: the printer\nStatus: ordered a new drum." in text
