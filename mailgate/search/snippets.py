"""A short plain-text excerpt of an article around the first word a query matched."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailgate.search.query import Term, strip_marks

WIDTH = 160  # characters of excerpt, about two lines of a terminal
_WORD = re.compile(r"[^\W_]+")


def snippet(text: str, terms: Sequence[Term]) -> str:
    """The text around the first match of any term's first word (folded as the index folds
    it), on one line; the start of the text when no word is found (it matched elsewhere)."""
    if not text:
        return ""
    wanted = {v.split()[0].replace("ß", "ss") for t in terms for v in t.variants() if v.strip()}
    at = 0
    for found in _WORD.finditer(text):
        word = strip_marks(found.group()).replace("ß", "ss")
        if any(word.startswith(w) for w in wanted):
            at = found.start()
            break
    start = max(0, at - WIDTH // 3)
    if start:  # begin at a word
        space = text.find(" ", start, at)
        start = space + 1 if space != -1 else start
    excerpt = " ".join(text[start : start + WIDTH].split())
    prefix = "…" if start else ""
    suffix = "…" if start + WIDTH < len(text) else ""
    return f"{prefix}{excerpt}{suffix}"
