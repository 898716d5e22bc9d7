"""An agent's closing block (greeting, name, contact lines) without a `-- ` separator: found,
cut to the greeting and the name, or cut whole where the desk's closing replaces it."""

from __future__ import annotations

import re

from mailgate.reading.closings import SIGN_OFFS, THANKS

# Closing lines of every language in the table, matched whole (a name may follow on the same
# line): the sign-offs, and the thanks that stand where a sign-off does ("Thanks, Jana").
_CLOSINGS = (*SIGN_OFFS, *THANKS)


def _closing_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """The phrases at a line's start, whole, with punctuation, then whatever follows."""
    longest_first = sorted(phrases, key=len, reverse=True)
    return re.compile(
        r"^\s*(?:" + "|".join(re.escape(c) for c in longest_first) + r")"
        r"(?!\w)\s*[,.!]*\s*(?P<rest>.*)$",
        re.IGNORECASE,
    )


_CLOSING = _closing_pattern(_CLOSINGS)
_SIGN_OFF = _closing_pattern(SIGN_OFFS)
# A closing block is a few short lines: name, title, company, address, phones, mail, web.
# Once a contact line has shown it is one, anything may follow (a register entry, a
# confidentiality notice) up to MAX_TAIL lines.
MAX_BLOCK_LINES = 15
MAX_TAIL = 40
MAX_LINE = 100
MAX_NAME = 60
_CONTACT = re.compile(
    r"@|www\.|https?://|\+?\d[\d /().-]{5,}\d|\b(?:tel|fon|phone|fax|mobil|mobile|e-?mail)\b"
    r"|\b(?:gmbh|ag|kg|ug|e\.\s?k\.|ltd|inc|llc|gbr)\b",
    re.IGNORECASE,
)


def cut_closing_block(text: str) -> str:
    """The text with its closing block cut after the greeting and the name; unchanged when
    its last lines do not look like a closing block."""
    lines = text.split("\n")
    start = _closing_start(lines)
    if start is None:
        return text
    # The name: the line below the greeting, also where the greeting's line has one
    # ("Best regards, Jana" above "Jana Schmidt").
    name = next((i for i in range(start + 1, len(lines)) if lines[i].strip()), None)
    named = name is not None and _looks_like_name(lines[name].strip())
    kept = name + 1 if name is not None and named else start + 1
    return "\n".join(lines[:kept]).rstrip()


def is_signed(text: str) -> bool:
    """Whether the text ends with a closing ("Mit freundlichen Grüßen / Jana"): then the
    mail that carries it needs no closing of its own."""
    return _closing_start(text.rstrip().split("\n")) is not None


def without_closing(text: str) -> str:
    """The text without the closing it ends with (greeting, name); unchanged when it ends
    with none, or when nothing would be left of it. Where an agent's own signature was cut,
    the desk's closing takes the place of theirs."""
    lines = text.rstrip().split("\n")
    start = _closing_start(lines)
    kept = "\n".join(lines[:start]).rstrip() if start is not None else text
    return kept if kept.strip() else text


def is_sign_off(text: str) -> bool:
    """Nothing but a sign-off and perhaps a name ("Viele Grüße\nJana"); thanks say something
    ("Danke!") and are not taken for one."""
    lines = text.strip().split("\n")
    return _SIGN_OFF.match(lines[0]) is not None and _closing_start(lines) == 0


def is_closing_line(line: str) -> bool:
    """A greeting line: closing words, at most a name after them ("Best regards, Jana")."""
    match = _CLOSING.match(line)
    return match is not None and _is_greeting(match["rest"])


def _closing_start(lines: list[str]) -> int | None:
    """The line of the last greeting followed by nothing but a closing block; None if none."""
    for i in range(len(lines) - 1, max(-1, len(lines) - MAX_TAIL - 2), -1):
        match = _CLOSING.match(lines[i])
        if match and _is_greeting(match["rest"]) and _is_block(lines[i + 1 :], match["rest"]):
            return i
    return None


def _is_greeting(rest: str) -> bool:
    """What follows the closing words on its line is at most a name ("Best regards, Jana")."""
    return _looks_like_name(rest) if rest else True


def _looks_like_name(line: str) -> bool:
    """A short line without digits, colon, address or a sentence's end: "Jana Schmidt",
    "i.A. J. Schmidt", "Ihr Support-Team"."""
    words = line.split()
    if not words or len(line) > MAX_NAME or len(words) > 6 or re.search(r"[\d:@?!]", line):
        return False
    if not any(c.isalpha() for c in line):  # a rule (Outlook's "_____") names nobody
        return False
    # A full stop ends a sentence, unless it ends an initial or an abbreviation ("J.").
    return not line.endswith(".") or len(words[-1]) <= 3


def _is_prose(line: str) -> bool:
    return len(line.split()) >= 4 and line.endswith((".", "?", "!"))


def _is_block(after: list[str], name: str) -> bool:
    """A name first (unless the greeting's line has it), then short lines that are not
    sentences, until a contact line; after one, anything."""
    filled = [line.strip() for line in after if line.strip()]
    if not name:
        if filled and not _looks_like_name(filled[0]):
            return False
        filled = filled[1:]
    for n, line in enumerate(filled, start=1):
        if _CONTACT.search(line):
            return len(filled) <= MAX_TAIL
        if n >= MAX_BLOCK_LINES or len(line) > MAX_LINE or _is_prose(line):
            return False
    return True
