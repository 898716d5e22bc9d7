"""Budgets for the steps that read what a sender wrote; past one, a cheaper reading, named."""

from __future__ import annotations

import html as entities
import re
from collections.abc import Iterable

# HTML flattened to text and sanitised for display up to this size (characters); real mail
# bodies are a few hundred KB at most. Larger HTML is shown with its tags cut out, and the
# original is kept as an attachment.
MAX_HTML = 2 * 1024 * 1024
# HTML whose elements nest deeper than this is read as if over MAX_HTML: the sanitiser (nh3)
# checks the stack of open elements at each tag, so its time grows with depth times size
# (2 MB of nested blockquotes took minutes). Long Gmail threads nest a few levels a reply.
MAX_HTML_DEPTH = 256
# Below this size even the deepest nesting sanitises in well under a second (10,000 nested
# blockquotes in 256 KB: 0.6 s), so the count is spared for the mail most HTML is.
DEPTH_CHECKED_FROM = 256 * 1024
# Text searched for quoted history and a signature; a longer mail is taken whole.
MAX_QUOTE_TEXT = 1024 * 1024
# winmail.dat unpacked up to this size; a larger one stays the attachment it came as.
MAX_TNEF = 16 * 1024 * 1024
# Comments nested deeper in an address header are flattened: the stdlib's address parser
# recurses once a level and gave up on 1,000, taking every header of the mail with it.
MAX_COMMENT_DEPTH = 20

HTML_FILE = "message.html"
# What staff read on the article for each fallback (defects named "budget:<step>...").
_NOTES = {
    "html": f"HTML too large to read: shown as raw text, the original attached as {HTML_FILE}",
    "depth": f"HTML nested too deeply to read: shown as raw text, the original attached as "
    f"{HTML_FILE}",
    "tnef": "winmail.dat too large to unpack: kept as it came",
    "address": "address header too deeply nested: read without its comments",
}
_TAG = re.compile(r"<[^<>]*>")
_ELEMENT_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
# Elements that never hold others, or that the next sibling closes: they add no depth.
_FLAT = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option",
    }
)  # fmt: skip


def budget_notes(defects: Iterable[str]) -> list[str]:
    """The staff's words for the fallbacks a mail took, once each, in order."""
    steps = (d.removeprefix("budget:").split(":")[0] for d in defects if d.startswith("budget:"))
    return [_NOTES[step] for step in dict.fromkeys(steps) if step in _NOTES]


def tags_cut(html: str) -> str:
    """HTML as raw text in one linear pass: tags cut out, entities decoded, blank runs
    shortened. No structure is understood, so no input can make it slow."""
    text = entities.unescape(_TAG.sub(" ", html)).replace("\xa0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text).strip()


def too_deep(html: str) -> bool:
    """Whether the HTML's elements nest deeper than MAX_HTML_DEPTH (one linear pass)."""
    if len(html) < DEPTH_CHECKED_FROM:
        return False
    depth = 0
    for closing, name in _ELEMENT_TAG.findall(html):
        if name.lower() in _FLAT:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        if depth > MAX_HTML_DEPTH:
            return True
    return False


def comments_flattened(value: str) -> str | None:
    """The value without parentheses when its comments nest deeper than the budget, else
    None (the value is fine as it is)."""
    depth = deepest = 0
    for paren in re.findall(r"[()]", value):
        depth = depth + 1 if paren == "(" else max(0, depth - 1)
        deepest = max(deepest, depth)
    if deepest <= MAX_COMMENT_DEPTH:
        return None
    return re.sub(r"[()]", " ", value)
