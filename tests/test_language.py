"""The sender's language: headers first, else the words of the text."""

from __future__ import annotations

import pytest

from mailgate.reading.language import mail_language
from mailgate.reading.parse import ParsedMail

BOTH = ("de", "en")


@pytest.mark.parametrize(
    ("headers", "text", "expected"),
    [
        ({"content-language": "de-DE"}, "Hello, the printer is broken.", "de"),
        ({"accept-language": "fr-FR, en-US;q=0.8"}, "", "en"),
        ({}, "Hallo, unser Drucker druckt nicht. Bitte helfen Sie uns, danke!", "de"),
        ({}, "Hello, our printer does not print. Could you please help?", "en"),
        ({}, "Drucker kaputt", None),  # too little to tell
        ({}, "", None),
        ({"content-language": "fr"}, "Bonjour, l'imprimante ne marche pas.", None),
    ],
)
def test_preferred_language(headers: dict[str, str], text: str, expected: str | None) -> None:
    assert mail_language(mail(headers, text), BOTH) == expected


def test_only_languages_we_write() -> None:
    text = "Hallo, das ist nicht gut und ich bitte um Hilfe"
    assert mail_language(mail({}, text), ("en",)) is None


def mail(headers: dict[str, str], text: str) -> ParsedMail:
    return ParsedMail(None, "", "kunde@example.com", "", headers=headers, text=text)
