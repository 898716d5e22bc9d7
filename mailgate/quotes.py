"""Strip quoted history and signature from a reply: keep only what its writer wrote."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

from mailparser_reply import EmailMessage

from mailgate.mime.budgets import MAX_QUOTE_TEXT

# Attribution lines ("On … wrote:", "Am … schrieb …:") of these languages are recognised.
LANGUAGES = ("de", "en")

_QUOTE = re.compile(r"^\s*>")
# Outlook's separators; the library only knows the English one. Forwarded mail is deliberately
# absent: a forwarded original is often the very content the customer wants us to see.
_ORIGINAL_MARKER = re.compile(
    r"^(?:> ?)*-{3,}\s*(?:Original Message|Ursprüngliche Nachricht)\s*-{3,}$", re.IGNORECASE
)
_QUOTE_PREFIX = re.compile(r"^(?:> ?)*")
# An Outlook header block starts with the sender; without this check two lines like
# "To: …" and "Date: …" in someone's own text would be taken for a quote header.
_FROM_LINE = re.compile(r"^(?:> ?)*[* ]*(?:From|Von):", re.IGNORECASE | re.MULTILINE)
_FIELD_LINE = re.compile(r"^(?:> ?)*[* ]*[\w-]+:")
_SEPARATOR_LINE = re.compile(r"^\s*(?:_{10,}|-{10,})\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")
# Quote headers are short lines; longer ones are not searched, as some header patterns
# (the library's too) take time quadratic in the line's length. The library's patterns are
# also only run over the start of a long mail, bounding the time any input can cost.
_HEADER_LINE_LIMIT = 300
_LIBRARY_SCAN_LIMIT = 30_000
_MOBILE_SIGNATURE = re.compile(
    r"^(?:Sent from my .+|Von meinem .+ gesendet|Gesendet von .+|Get Outlook for .+)$",
    re.IGNORECASE,
)


def strip_quotes(text: str) -> str:
    """The reply's own text: without the quoted original, its attribution and the signature.
    Quotes the writer answered between (inline replies) stay; a mail that would end up
    empty is returned whole (stripped) so nothing the sender wrote is lost."""
    if len(text) > MAX_QUOTE_TEXT:  # past the budget the whole mail is the reply's text
        return text.strip()
    lines = text.replace("\r\n", "\n").split("\n")
    kept = _without_quoted_history(lines)
    kept = _without_signature(kept)
    kept = _without_trailing(kept, lambda line: not line.strip() or bool(_QUOTE.match(line)))
    kept = _without_trailing(kept, lambda line: not line.strip() or _is_separator(line))
    while kept and not kept[0].strip():
        kept = kept[1:]
    result = "\n".join(line.rstrip() for line in kept)
    return result if result.strip() else text.strip()


@functools.cache
def _library_headers() -> re.Pattern[str]:
    # Only the maintained parser's per-language header patterns are used: its own cutting
    # strips every line's indentation and treats any line starting "Thanks," or "Grüße" as
    # the start of a signature, dropping everything below it.
    return EmailMessage(text="", languages=list(LANGUAGES)).HEADER_REGEX


def _quote_header(lines: list[str]) -> tuple[int, int] | None:
    """(first line, line after) of the earliest plausible quote header, or None.
    The library's pattern is costly over a long quoted history, so its matches are taken
    in order only until they start after a plausible header of our own, or one is found."""
    own = next((s for s in sorted(_own_headers_in(lines)) if _plausible(lines, s)), None)
    for span in _library_headers_in(lines):
        if own is not None and span > own:
            break
        if _plausible(lines, span):
            return span
    return own


def _library_headers_in(lines: list[str]) -> Iterator[tuple[int, int]]:
    """The library's header matches, earliest first (its matches never overlap)."""
    # Matched against stripped lines (as the library itself does); the line count is kept.
    stripped = "\n".join(_header_candidate(line) for line in lines)[:_LIBRARY_SCAN_LIMIT]
    if not _may_hold_library_header(stripped):
        return
    for match in _library_headers().finditer(stripped):
        block = match.group(0)
        start = match.start() + len(block) - len(block.lstrip("\n"))
        yield stripped.count("\n", 0, start), stripped.count("\n", 0, match.end()) + 1


# What each of the library's header patterns needs, looked for with the same case folding:
# "schrieb", "wrote:", "Original Message", or two lines starting with a header field. The
# library's own scan tries its five patterns at every character, most of the time a mail
# costs here, while most mails (new requests) hold no quote header at all. Written for the
# pattern a test pins (test_quotes): a library that changes it fails that test.
_LIBRARY_WORDS = re.compile(r"schrieb|wrote:|original message", re.IGNORECASE)
_LIBRARY_FIELD = re.compile(
    r"^[> *]*(?:Von|Gesendet|An|Betreff|Datum|Cc|Organisation"
    r"|From|Sent|To|Subject|Date|Organization):",
    re.IGNORECASE | re.MULTILINE,
)


def _may_hold_library_header(text: str) -> bool:
    if _LIBRARY_WORDS.search(text):
        return True
    fields = _LIBRARY_FIELD.finditer(text)
    return next(fields, None) is not None and next(fields, None) is not None


def _own_headers_in(lines: list[str]) -> list[tuple[int, int]]:
    spans = []
    candidates = [_header_candidate(line) for line in lines]
    for i, line in enumerate(candidates):
        if _ORIGINAL_MARKER.match(line) or _is_attribution(line):
            spans.append((i, i + 1))
        elif line and i + 1 < len(lines) and _is_attribution(f"{line} {candidates[i + 1]}"):
            spans.append((i, i + 2))
    return spans


def _is_attribution(line: str) -> bool:
    """ "On <date>, <name> wrote:" or "Am <date> schrieb <name>:" (string tests, not a
    backtracking pattern, so that the time stays linear in the line's length)."""
    if not line.rstrip().endswith(":"):  # most lines: no need to look further
        return False
    text = _QUOTE_PREFIX.sub("", line).strip().lower()
    head = text[:-1].rstrip()
    if text.startswith("on "):
        return head.endswith(" wrote")
    return text.startswith("am ") and (" schrieb " in head or head.endswith(" schrieb"))


def _header_candidate(line: str) -> str:
    """The line stripped, or "" when it is too long to be part of a quote header."""
    line = line.strip()
    return line if len(line) <= _HEADER_LINE_LIMIT else ""


def _plausible(lines: list[str], span: tuple[int, int]) -> bool:
    """Whether a matched header really introduces a quoted mail, not the writer's own words
    ("Am Montag schrieb ich Ihnen:" or two lines "To: all" and "Date: Friday")."""
    block = "\n".join(line.strip() for line in lines[span[0] : span[1]])
    if _ORIGINAL_MARKER.match(block.split("\n", 1)[0]):
        return True
    if _FIELD_LINE.match(block):
        return bool(_FROM_LINE.search(block))  # Outlook's block starts with the sender
    following = next((lines[i] for i in range(span[1], len(lines)) if lines[i].strip()), "")
    quoted_next = bool(_QUOTE.match(following))
    # Clients put a date or an address in the attribution; plain prose seldom has either.
    return quoted_next or bool(re.search(r"\d|@", block))


def _without_quoted_history(lines: list[str]) -> list[str]:
    header = _quote_header(lines)
    if header is None:
        return lines
    start, end = header
    if _answers_inline(lines[end:]):
        # Bottom-posted or inline: the quoted questions give the answers their meaning.
        return lines[:start] + lines[end:]
    return lines[:start]


def _answers_inline(after: list[str]) -> bool:
    """True when the header is followed by quoted lines and then the writer's own text."""
    body = [line for line in after if line.strip()]
    if not body or not _QUOTE.match(body[0]):
        return False
    for line in body:
        if _QUOTE.match(line):
            continue
        # The first unquoted line: an answer, unless a signature or a further quoted mail.
        own = _header_candidate(line)
        return not (
            _SIGNATURE_DELIMITER.match(line)
            or _FROM_LINE.match(own)
            or _ORIGINAL_MARKER.match(own)
            or _is_attribution(own)
        )
    return False


def _without_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if _SIGNATURE_DELIMITER.match(line):
            return lines[:i]
    last = [i for i, line in enumerate(lines) if line.strip()]
    if last and _MOBILE_SIGNATURE.match(lines[last[-1]].strip()):
        return lines[: last[-1]]
    return lines


def _without_trailing(lines: list[str], drop: Callable[[str], bool]) -> list[str]:
    end = len(lines)
    while end and drop(lines[end - 1]):
        end -= 1
    return lines[:end]


def _is_separator(line: str) -> bool:
    return bool(_SEPARATOR_LINE.match(line) or _ORIGINAL_MARKER.match(line.strip()))
