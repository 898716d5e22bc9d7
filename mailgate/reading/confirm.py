"""Whether a customer's reply confirms a delivered ticket: read from their own first words."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from mailgate.reading.closings import OPENINGS, SIGN_OFFS, THANKS

# Words, with an apostrophe inside (doesn't); digits count as words too.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# An opening salutation is skipped, so that "Hallo Frau Schmidt, passt!" confirms; what
# follows a sign-off is a signature (and perhaps a legal disclaimer full of "nicht"). Thanks
# are no sign-off here: "Danke! Aber es druckt noch nicht" goes on to say something. A
# thank-you that opens the reply is skipped when looking for the confirm word ("Merci, c'est
# parfait" confirms as "C'est parfait" does); its line still counts for the blockers.
_SHORT_LINE = 6  # words: a greeting or sign-off line is short; a longer one says something


def words(text: str) -> list[str]:
    """The words of `text`, case-folded, with a typographic apostrophe read as a plain one."""
    return _WORD.findall(text.replace("\u2019", "'").casefold())


def _starts_with(found: Sequence[str], phrases: Iterable[str]) -> bool:
    return any(p and found[: len(p)] == p for p in (words(phrase) for phrase in phrases))


def _contains(found: Sequence[str], phrases: Iterable[str]) -> bool:
    for phrase in (words(p) for p in phrases):
        span = len(phrase)
        if span and any(found[i : i + span] == phrase for i in range(len(found) - span + 1)):
            return True
    return False


def _without_greeting(line: str) -> str:
    """The line without an opening salutation: a short one up to its first comma or
    exclamation mark, or a short line that is nothing else."""
    if not _starts_with(words(line), OPENINGS):
        return line
    head, mark, rest = _split_once(line)
    if len(words(head)) > _SHORT_LINE:
        return line
    return rest if mark else ""


def _split_once(line: str) -> tuple[str, str, str]:
    parts = re.split(r"([,!])", line, maxsplit=1)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (line, "", "")


def said_lines(text: str) -> list[str]:
    """The non-empty lines the customer wrote before their sign-off or signature, without
    the opening salutation. The sign-off line itself counts: "Danke, aber …" says something."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if raw.rstrip() == "--" or line.startswith("-----"):
            break
        if not lines:
            line = _without_greeting(line).strip()
        if not line:
            continue
        lines.append(line)
        found = words(line)
        if len(found) <= _SHORT_LINE and _starts_with(found, SIGN_OFFS):
            break
    return lines


def _without_thanks(line: str) -> str:
    """The line without a short thank-you it opens with ("Merci, c'est parfait" -> "c'est
    parfait"; "Vielen Dank!" -> ""), up to the first comma, full stop or exclamation mark."""
    if not _starts_with(words(line), THANKS):
        return line
    parts = re.split(r"[,.!]", line, maxsplit=1)
    if len(words(parts[0])) > _SHORT_LINE:
        return line
    return parts[1].strip() if len(parts) == 2 else ""


def _opens_with(lines: Sequence[str], confirm_words: Iterable[str]) -> bool:
    """The first line begins with a confirm word, or does past a thank-you that opens it
    (the next line does, when the thanks stand alone). A confirm word is read before thanks:
    Polish "tak" (yes) is Danish for thanks, Portuguese "obrigado" is both."""
    phrases = list(confirm_words)
    for line in lines:
        if _starts_with(words(line), phrases):
            return True
        said = _without_thanks(line)
        if said:
            return _starts_with(words(said), phrases)
    return False


def confirms(text: str, confirm_words: Iterable[str], blockers: Iterable[str]) -> bool:
    """What the customer says first (past a greeting and a thank-you) begins with a confirm
    word, and nothing they wrote before the sign-off asks a question or contains a blocker
    (a negation, "but", "still" …)."""
    lines = said_lines(text)
    if not _opens_with(lines, confirm_words):
        return False
    said = " ".join(lines)
    return "?" not in said and not _contains(words(said), blockers)
