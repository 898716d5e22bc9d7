"""Every reply of the corpus (tests/reply_corpus.py) keeps exactly its writer's text; the
score over all of them is printed at the end of the run (tests/conftest.py)."""

from __future__ import annotations

import pytest

from mailgate.reading.quotes import languages, strip_quotes
from tests.reply_corpus import Reply, replies

REPLIES = replies()
CLIENTS = (
    "gmail",
    "outlook-desktop",
    "outlook-web",
    "outlook-ios",
    "outlook-android",
    "apple",
    "thunderbird",
)


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: r.id)
def test_reply(reply: Reply) -> None:
    assert strip_quotes(reply.text) == reply.kept


def test_the_corpus_covers_every_language_and_client() -> None:
    assert len(REPLIES) >= 150
    by_language: dict[str, set[str]] = {}
    for reply in REPLIES:
        by_language.setdefault(reply.language, set()).add(reply.name)
    assert set(languages()) <= set(by_language)
    for language in languages():
        names = by_language[language]
        missing = [c for c in CLIENTS if not any(n.startswith(c) for n in names)]
        assert not missing, f"{language}: no reply from {', '.join(missing)}"
        assert any(n.startswith("kept") for n in names), f"{language}: no never-cut case"
