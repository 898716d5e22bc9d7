"""A ticket's stored history, as the web desk says it in German, English and French."""

from __future__ import annotations

import pytest

from mailgate.web.event_words import LABELS, event_in_words
from mailgate.web.words import LANGUAGES


@pytest.mark.parametrize(
    ("action", "detail", "said"),
    [
        ("created", "from anna@example.de", "eröffnet: von anna@example.de"),
        ("article", "internal", "Mail: interne Notiz"),
        ("status", "open -> hold", "Status: offen → zurückgestellt"),
        ("hold", "until 2026-12-09", "zurückgestellt: bis 09.12.2026"),
        (
            "status",
            "delivered -> closed (not confirmed within 7 days)",
            "Status: erledigt → geschlossen (nicht binnen 7 Tagen bestätigt)",
        ),
        (
            "status",
            "closed -> open (customer replied)",
            "Status: geschlossen → offen (Kunde hat geantwortet)",
        ),
        ("type", "none -> incident", "Typ: keine → incident"),
        ("billable", "no -> yes", "berechnet: nein → ja"),
        (
            "reminder",
            "confirmation_reminder to customer",
            "Erinnerung: Kunde erneut um Bestätigung gebeten",
        ),
        ("cc", "added lea@example.de", "weitere Person: lea@example.de hinzugefügt"),
        (
            "sla_breach",
            "first response was due 2026-12-08 09:16 UTC",
            "Reaktionszeit überschritten: fällig am 08.12.2026 09:16 UTC",
        ),
        # What an event quotes stays as stored: a bounce's words, an agent's note.
        (
            "address_failing",
            "a@b.de: 550 no such user",
            "Adresse nicht zustellbar: a@b.de: 550 no such user",
        ),
        ("time", "30m billable: Treiber", "Zeit gebucht: 30m billable: Treiber"),
    ],
)
def test_german(action: str, detail: str, said: str) -> None:
    assert event_in_words(action, detail, "de") == said


def test_french_sets_a_no_break_space_before_the_colon() -> None:
    said = event_in_words("status", "working -> delivered", "fr")
    assert said == "statut\u00a0: en cours → résolu"


def test_english_says_what_the_commands_store_in_words() -> None:
    assert event_in_words("status", "open -> working", "en") == "status: open → in progress"
    assert event_in_words("hold", "until 2026-12-09", "en") == "on hold: until 2026-12-09"


def test_an_unknown_kind_of_event_is_shown_as_stored() -> None:
    assert event_in_words("merged", "from CID-1001", "de") == "merged: from CID-1001"
    assert event_in_words("status", "something else", "de") == "Status: something else"


def test_every_kind_has_words_in_every_language() -> None:
    assert all(set(words) == set(LANGUAGES) for words in LABELS.values())
