"""Strip quoted history and signature from a reply: keep only what its writer wrote.

What marks a quote in each language and client is data (mailgate/replytext/languages.toml);
the reading is here and in mailgate.replytext.headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from mailgate.reading.mime.budgets import MAX_QUOTE_TEXT
from mailgate.reading.replytext.headers import (
    HEADER_LINE_LIMIT,
    is_quoted,
    is_separator_text,
    quote_headers,
)
from mailgate.reading.replytext.table import normalise, table

_SEPARATOR_LINE = re.compile(r"^\s*(?:_{10,}|-{10,})\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")


def languages() -> tuple[str, ...]:
    """The languages whose reply marks are known."""
    return table().languages


def strip_quotes(text: str) -> str:
    """The reply's own text: without the quoted original, its attribution and the signature.
    Inline answers stay, the quoted lines between them go (staff see them with `tickets
    show --quoted`); a mail that would end up empty is returned whole (stripped) so nothing
    the sender wrote is lost."""
    if len(text) > MAX_QUOTE_TEXT:  # past the budget the whole mail is the reply's text
        return text.strip()
    lines = text.replace("\r\n", "\n").split("\n")
    headers, forward = quote_headers(lines)
    # The history is cut above a forwarded mail, so the line it starts at stays where it is.
    kept = _without_quoted_history(lines, headers)
    if forward is None:
        kept = _without_trailing(_without_signature(kept), _added_below)
    else:  # the forwarded mail stays whole, its signature and quotes too
        kept = _without_signature(kept[:forward]) + kept[forward:]
    while kept and not kept[0].strip():
        kept = kept[1:]
    result = "\n".join(line.rstrip() for line in kept)
    return result if result.strip() else text.strip()


def _without_quoted_history(lines: list[str], headers: list[tuple[int, int]]) -> list[str]:
    if not headers:
        return lines
    start, end = headers[0]
    if _answers_inline(lines, end, {first for first, _ in headers}):
        # Bottom-posted or inline: the writer's answers stay, the quoted lines around them
        # go, a run of blank lines where a quote stood shortened to one.
        return lines[:start] + _without_quoted_lines(lines[end:])
    return lines[:start]


def _without_quoted_lines(lines: list[str]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if is_quoted(line) or (not line.strip() and (not kept or not kept[-1].strip())):
            continue
        kept.append(line)
    return kept


def _answers_inline(lines: Sequence[str], end: int, header_starts: set[int]) -> bool:
    """True when the header is followed by quoted lines and then the writer's own text."""
    after = [i for i in range(end, len(lines)) if lines[i].strip()]
    if not after or not is_quoted(lines[after[0]]):
        return False
    for i in after:
        if is_quoted(lines[i]):
            continue
        # The first unquoted line: an answer, unless a signature or a further quoted mail.
        line = lines[i]
        return not (
            _SIGNATURE_DELIMITER.match(line)
            or i in header_starts
            or _is_separator(line)
            or _is_client_signature(line)
        )
    return False


def _without_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if _SIGNATURE_DELIMITER.match(line):
            return lines[:i]
    return lines


def _added_below(line: str) -> bool:
    """What clients add below the writer's last line: blank lines, the rest of a quote, a
    separator, "Sent from my iPhone"."""
    return not line.strip() or is_quoted(line) or _is_separator(line) or _is_client_signature(line)


def _without_trailing(lines: list[str], drop: Callable[[str], bool]) -> list[str]:
    end = len(lines)
    while end and drop(lines[end - 1]):
        end -= 1
    return lines[:end]


def _is_separator(line: str) -> bool:
    if _SEPARATOR_LINE.match(line):
        return True
    return len(line) <= HEADER_LINE_LIMIT and is_separator_text(normalise(line))


def _is_client_signature(line: str) -> bool:
    return len(line) <= HEADER_LINE_LIMIT and table().is_signature(line)
