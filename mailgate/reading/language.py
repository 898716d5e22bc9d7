"""Which language a sender writes: their mail's language headers, else a look at the text."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from mailgate.reading.parse import ParsedMail, once_per_mail

# Short words that are frequent in one language and rare in the others; enough to tell the
# shipped template languages apart in a support request, not a general language detector.
_COMMON_WORDS = {
    "de": frozenset({
        "und", "der", "die", "das", "nicht", "ich", "ist", "wir", "sie", "bitte", "danke",
        "hallo", "mit", "für", "auf", "eine", "ein", "ihr", "ihre", "wie", "kann", "können",
        "haben", "habe", "mein", "meine", "unser", "unsere", "geht", "noch", "schon",
    }),
    "en": frozenset({
        "and", "the", "is", "not", "we", "you", "please", "thanks", "hello", "with", "for",
        "on", "a", "an", "my", "our", "your", "how", "can", "could", "have", "has", "does",
        "doesn't", "it", "this", "that", "still",
    }),
    # Elided forms ("j'ai", "c'est") are one word to _WORD. Left out because German or
    # English has them too: "des" and "du" (German), "en" and "plus" (English and German);
    # and because Spanish, Italian or Portuguese writers use them as often, who are better
    # answered in the default language than in French: de, la, le, les, que, qui, il, ma,
    # mes, mais, ne, ai.
    "fr": frozenset({
        "et", "est", "pas", "je", "j'ai", "nous", "vous", "merci", "bonjour", "avec", "pour",
        "sur", "une", "mon", "notre", "votre", "n'ai", "n'est", "c'est", "ce", "cette",
        "encore", "déjà", "au", "aux", "dans", "très", "avons", "avez", "sont", "elle",
        "cordialement", "toujours", "depuis", "aussi", "ça",
    }),
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+(?:'[a-z]+)?", re.UNICODE)
ENOUGH = 3  # fewer telling words than this decide nothing


def from_headers(headers: Mapping[str, str], available: Collection[str]) -> str | None:
    for header in ("content-language", "accept-language"):
        for tag in headers.get(header, "").split(","):
            primary = tag.split(";")[0].strip().split("-")[0].lower()
            if primary in available:
                return primary
    return None


@once_per_mail
def text_scores(mail: ParsedMail) -> dict[str, int]:
    """How many of each language's common words the mail's text has (once a mail)."""
    words = [w.lower() for w in _WORD.findall(mail.text[:4000])]
    return {lang: sum(w in common for w in words) for lang, common in _COMMON_WORDS.items()}


def from_text(scores: Mapping[str, int], available: Collection[str]) -> str | None:
    scores = {lang: score for lang, score in scores.items() if lang in available}
    best = max(scores, key=lambda lang: scores[lang], default=None)
    if best is None or scores[best] < ENOUGH:
        return None
    runner_up = max((v for k, v in scores.items() if k != best), default=0)
    return best if scores[best] > runner_up else None


def mail_language(mail: ParsedMail, available: Collection[str]) -> str | None:
    """The sender's language if we write it: Content-Language or Accept-Language first,
    since the client knows; else what the text looks like."""
    return from_headers(mail.headers, available) or from_text(text_scores(mail), available)
