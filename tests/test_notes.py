"""An article's note, stored in English, in each reader's language."""

from __future__ import annotations

import pytest

from mailgate.desk import notes, unverified
from mailgate.reading.mime.budgets import budget_notes

KINDS = [
    notes.AUTOMATIC_REPLY,
    notes.UNVERIFIED_REPORT,
    notes.FAILURE_REPORT,
    f"{notes.UNVERIFIED_AGENT}no dkim=pass for example.com",
    unverified.STRANGER,
    f"{unverified.NOTE}Alice <a@example.com>, Bob <b@example.com>",
    "sender not verified: dmarc=fail for acme.example",
]


@pytest.mark.parametrize("stored", KINDS)
def test_in_english_a_note_reads_as_stored(stored: str) -> None:
    assert notes.in_words(stored, "en") == stored
    assert notes.in_words(stored, "es") == stored  # a language without words: English


def test_each_part_is_said_in_the_readers_language_and_the_rest_stays() -> None:
    [too_deep] = budget_notes(["budget:depth:120"])
    stored = f"sender not verified: dmarc=fail for acme.example; {too_deep}"
    assert notes.in_words(stored, "de") == (
        f"Absender nicht verifiziert: dmarc=fail for acme.example; {too_deep}"
    )
    assert notes.in_words(notes.AUTOMATIC_REPLY, "fr") == "réponse automatique"
    assert notes.in_words(unverified.STRANGER, "de-AT") == (
        "Absender nicht bestätigt: gehört nicht zu diesem Ticket"
    )


def test_only_doubts_about_the_sender_are_a_warning() -> None:
    assert notes.warning(notes.AUTOMATIC_REPLY) == ""
    assert notes.warning(f"{notes.UNVERIFIED_AGENT}no dkim=pass") == ""  # staff's own mail
    assert notes.warning(unverified.STRANGER) == unverified.STRANGER
