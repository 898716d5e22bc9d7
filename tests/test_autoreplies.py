"""Out-of-office and other automatic mail, by the markers providers and clients put on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.mailroom import AGENT, Mailroom
from tests.mails import make_mail

CUSTOMER = "alice@acme.example"
AUTOREPLIES = sorted((FIXTURES / "autoreplies").glob("*.eml"))
BY_HEADER = [p for p in AUTOREPLIES if not p.name.startswith("subject-")]


def delivered_ticket(room: Mailroom) -> None:
    """CID-1000, delivered: a customer's own reply would set it back to working."""
    assert room.ingest(make_mail()) == "ticket CID-1000"
    answer = make_mail(
        subject="Re: [CID-1000] Printer broken", body="#deliver\n\nDone.", sender=AGENT
    )
    assert room.ingest(answer) == "reply CID-1000"
    room.new_mail()


@pytest.mark.parametrize("path", AUTOREPLIES, ids=lambda p: p.stem)
def test_an_automatic_reply_changes_nothing_and_is_not_answered(room: Mailroom, path: Path) -> None:
    delivered_ticket(room)
    before = room.show("CID-1000")
    assert room.ingest(path.read_bytes()) == "reply CID-1000"
    assert room.new_mail() == []
    after = room.show("CID-1000")
    assert after["articles"][-1]["note"] == "automatic reply"
    for key in ("status", "last_action", "assignee", "priority"):
        assert after[key] == before[key], key
    assert after["status"] == "delivered"


@pytest.mark.parametrize("path", BY_HEADER, ids=lambda p: p.stem)
def test_an_automatic_mail_opening_a_ticket_gets_no_acknowledgement(
    room: Mailroom, path: Path
) -> None:
    raw = path.read_bytes().replace(b"[CID-1000] ", b"")
    assert room.ingest(raw) == "ticket CID-1000"
    assert room.new_mail() == []


# Subjects and headers a person's mail may carry: they are answered as usual.
PEOPLE = [
    ("Out of Office: cannot set it up in Outlook", {}),
    ("Auto: Reifenwechsel vereinbaren", {}),
    ("Abwesenheitsnotiz funktioniert nicht", {}),
    ("Printer broken", {"X-Autoreply": "no"}),
    ("Printer broken", {"Feedback-ID": "123:campaign:ses"}),
]


@pytest.mark.parametrize(("subject", "headers"), PEOPLE, ids=[s for s, _ in PEOPLE])
def test_a_person_using_such_words_is_answered(
    room: Mailroom, subject: str, headers: dict[str, str]
) -> None:
    assert room.ingest(make_mail(subject=subject, headers=headers)) == "ticket CID-1000"
    (ack,) = room.new_mail()
    assert str(ack["To"]) == CUSTOMER
