"""An agent's own signature in their answers: the one they registered, else the one learned
from the ends of their latest answers. It is cut, with the greeting above it, so that the
customer reads the desk's closing once instead of the agent's signature."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter

from mailgate.reading.signatures import is_closing_line, is_sign_off, without_closing
from mailgate.store.models import Agent

MAX_SIGNATURE = 5000  # characters: a signature, not a document
MIN_WORDS = 2  # a signature of one word ("Jana") would cut too much that only resembles it
ENDING_LINES = 15  # lines of an answer's end kept to learn from
ENDING_LINE = 200  # characters kept of each of them
REMEMBERED = 5  # answers whose ends are kept per agent
RECURRING = 3  # of them that must end alike for the end to be learned as the signature
MIN_LEARNED = 2  # lines a learned signature has below its greeting line

# Words and numbers, compared case-folded: line breaks, spacing, separators ("|", "--") and
# what a client makes of a link when it turns HTML into text do not count.
_WORD = re.compile(r"[^\W_]+")
_LINK = re.compile(r"<(?:mailto:|https?://)[^<>\s]*>|\[cid:[^\]\n]*\]", re.IGNORECASE)
_SENTENCE = re.compile(r"[.!?]$")


def without_own_signature(text: str, agent: Agent) -> str:
    """The answer without the agent's signature at its end (registered, else learned) and
    without their greeting; unchanged for an agent whose signature is not known. Empty when
    nothing else is left (a command mail): no answer goes out of a signature alone."""
    signature = agent.signature or learned_signature(endings_of(agent))
    if not signature:
        return text
    # The greeting goes too where the signature is gone already (cut at its `-- ` with the
    # quote, or left out by a phone): the desk's closing stands instead, once.
    kept = without_closing(without_signature(text, signature))
    return "" if is_sign_off(kept) else kept


def without_signature(text: str, signature: str) -> str:
    """`text` with `signature` cut from its end, also where only its greeting line differs
    ("Viele Grüße" written above a signature registered with "Mit freundlichen Grüßen");
    unchanged when the text does not end with it."""
    text = unicodedata.normalize("NFC", text)
    signature = unicodedata.normalize("NFC", signature)
    for form in _forms(signature):
        kept = _cut_at_end(text, form)
        if kept is not None:
            return kept
    return text


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _forms(signature: str) -> list[str]:
    """The signature, and the signature below its greeting line if it starts with one."""
    lines = [line for line in signature.strip().split("\n") if line.strip()]
    if len(lines) > 1 and is_closing_line(lines[0]):
        return [signature, "\n".join(lines[1:])]
    return [signature]


def _words(text: str) -> list[tuple[str, int]]:
    """(word, where it starts) for each word of the text, links written out by a client
    left out. Blanked rather than removed, so that positions stay those of the text."""
    blanked = _LINK.sub(lambda m: " " * len(m.group()), text)
    return [(m.group().casefold(), m.start()) for m in _WORD.finditer(blanked)]


def _cut_at_end(text: str, signature: str) -> str | None:
    """What comes before the signature, when the text ends with all of its words and the
    signature starts a line (or follows a greeting on it); None otherwise."""
    wanted = [word for word, _ in _words(signature)]
    # Only the end is looked at, so that a long answer costs no more than a short one; a
    # client's writing out of links and rewrapping leave the signature well within it.
    start = max(0, len(text) - 4 * len(signature) - 1000)
    found = [(word, start + at) for word, at in _words(text[start:])]
    if len(wanted) < MIN_WORDS or len(found) < len(wanted):
        return None
    tail = found[len(found) - len(wanted) :]
    if [word for word, _ in tail] != wanted:
        return None
    head = text[: tail[0][1]]
    before = head[head.rfind("\n") + 1 :]
    if before.strip() and not is_closing_line(before):
        return None
    lines = head.rstrip().split("\n")
    while lines and not _WORD.search(lines[-1]):  # a "-- " delimiter, a rule
        lines.pop()
    return "\n".join(lines).rstrip()


def ending(text: str) -> list[str]:
    """The last lines of an answer that hold a word, as kept to learn from."""
    lines = [line.strip()[:ENDING_LINE] for line in text.split("\n") if _WORD.search(line)]
    return lines[-ENDING_LINES:]


def endings_of(agent: Agent) -> list[list[str]]:
    try:
        stored = json.loads(agent.endings or "[]")
    except ValueError:
        return []
    return [list(map(str, e)) for e in stored if isinstance(e, list)]


def remember_ending(agent: Agent, text: str) -> None:
    """Keep the end of this answer with the agent, for the signature learned from them."""
    if not text.strip():
        return
    kept = [*endings_of(agent), ending(text)][-REMEMBERED:]
    agent.endings = json.dumps(kept, ensure_ascii=False)


def learned_signature(endings: list[list[str]]) -> str | None:
    """The longest block of last lines that at least RECURRING of the answers end with,
    from its greeting line on, or below its last sentence (what an agent says is no
    signature, however often they say it); None when no such block has MIN_LEARNED lines
    below its greeting line."""
    keyed = [[(_key(line), line) for line in e] for e in endings]
    for size in range(max((len(e) for e in keyed), default=0), 0, -1):
        ends = Counter(tuple(k for k, _ in e[-size:]) for e in keyed if len(e) >= size)
        block, count = ends.most_common(1)[0] if ends else ((), 0)
        if count >= RECURRING:
            lines = next(
                [line for _, line in e[-size:]]
                for e in reversed(keyed)
                if tuple(k for k, _ in e[-size:]) == block
            )
            return _signature_lines(lines)
    return None


def _signature_lines(lines: list[str]) -> str | None:
    """The block from its greeting line on, or below its last sentence if it has none."""
    greetings = [i for i, line in enumerate(lines) if is_closing_line(line)]
    sentences = [i + 1 for i, line in enumerate(lines) if _is_sentence(line)]
    lines = lines[greetings[-1] :] if greetings else lines[max(sentences, default=0) :]
    below_greeting = lines[1:] if greetings else lines
    return "\n".join(lines) if len(below_greeting) >= MIN_LEARNED else None


def _is_sentence(line: str) -> bool:
    return len(line.split()) >= 4 and bool(_SENTENCE.search(line))


def _key(line: str) -> str:
    return " ".join(word for word, _ in _words(unicodedata.normalize("NFC", line)))
