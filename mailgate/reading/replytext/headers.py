"""Where a reply's quoted original starts: the attribution line ("On … wrote:"), the header
block ("From: … Sent: …") or the "original message" separator, as languages.toml describes
them. Every line is looked at a bounded number of times: the time is linear in the mail."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailgate.reading.replytext.table import Form, Table, lower, normalise, table

# Quote headers are short lines; longer ones are not looked at (which also bounds the cost
# of any one line).
HEADER_LINE_LIMIT = 300
# Clients wrap a long attribution, in the middle of the name or the address too.
_ATTRIBUTION_LINES = 3
_SEPARATOR_MARKS = "-_= "
_FIELD_NAME_LIMIT = 30
# Lines starting with these are normalised whatever they hold (bold, separators).
_MARKED = "*-_="
# A line ending a sentence is the writer's, not the first piece of a wrapped attribution.
_SENTENCE_END = (".", "!", "?", ":", ";")

_FIELD_TRIM = "*> \t\u00a0\u202f"
_DIGIT = re.compile(r"\d")

Span = tuple[int, int]  # (first line, line after)


def is_quoted(line: str) -> bool:
    return line.lstrip()[:1] == ">"


def candidates(lines: Sequence[str]) -> tuple[list[str], list[int], dict[int, str]]:
    """Each line normalised (table.normalise), or "" when too long to be part of a header;
    the lines that may be part of one (a colon at the end, a field name in front, dashes);
    and the header-block field of each line that has one. Only the lines that may be part
    of a header, and the two above one ending in a colon, are normalised; the rest is only
    lowered."""
    norm, marked, fields, marks = [], [], {}, table()
    for i, line in enumerate(lines):
        text = line.strip()
        bare = text.lstrip("> ") if text[:1] == ">" else text
        if not bare or len(text) > HEADER_LINE_LIMIT:
            norm.append("")
            continue
        field = _field(bare, marks)
        if field is not None:
            fields[i] = field
        if field is not None or bare.endswith(":") or bare[0] in _MARKED:
            norm.append(normalise(text))
            marked.append(i)
        else:
            norm.append(bare.lower())
    done = set(marked)
    for end in marked:
        if norm[end].endswith(":"):
            for i in range(max(0, end - _ATTRIBUTION_LINES + 1), end):
                if i not in done and norm[i]:
                    norm[i] = normalise(lines[i])
                    done.add(i)
    return norm, marked, fields


def quote_headers(lines: Sequence[str]) -> tuple[list[Span], int | None]:
    """Every plausible quote header of the mail, earliest first, and the line a forwarded
    mail starts at (None without one): a forwarded mail below the writer's text is what
    they want read, so no header in or below it counts."""
    norm, marked, fields = candidates(lines)
    marks = table()
    forward = next((i for i in marked if _is_forward(norm[i], marks)), None)
    spans = [(i, i + 1) for i in marked if is_separator_text(norm[i], marks)]
    spans += _attributions(lines, norm, marked, marks)
    spans += _header_blocks(norm, fields, marks)
    spans += _unknown_attributions(lines, norm, marked) + _tagged_blocks(lines)
    return sorted({span for span in spans if forward is None or span[0] < forward}), forward


# Quote marks in a language the table does not know, found by what every client writes
# in them: an attribution names the quoted mail's sender by address and its date, and quoted
# lines follow; a header block of a ticket's mail has its tag in the subject field.
_ADDRESS = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_TAG = re.compile(r"\[[^\[\]\s]+-\d+\]")
_ANY_FIELD = re.compile(rf"\s*[^\s:>][^:]{{0,{_FIELD_NAME_LIMIT}}}\s?:(?:\s|$)")
_UNKNOWN_BLOCK_FIELDS = 3
_TIME = re.compile(r"\b\d{1,2}[:.]\d{2}\b")  # the quoted mail's time: "10:15", "10.15"


def _unknown_attributions(lines: Sequence[str], norm: list[str], marked: list[int]) -> list[Span]:
    """ "Support <support@example.com> ezt írta (időpont: 2026. dec. 7., H, 10:00):" above
    quoted lines: an address in angle brackets, a digit, a colon at the end."""
    spans = []
    for end in marked:
        if not norm[end].endswith(":") or not _quoted_next(lines, end):
            continue
        first = end  # a wrapped one: the lines below the blank line above, three at most
        while first > end - _ATTRIBUTION_LINES + 1 and first > 0 and norm[first - 1]:
            first -= 1
        if first > 0 and norm[first - 1] and first < end:
            first = end
        window = " ".join(lines[i] for i in range(first, end + 1))
        if _ADDRESS.search(window) and _DIGIT.search(window):
            spans.append((first, end + 1))
    return spans


def _tagged_blocks(lines: Sequence[str]) -> list[Span]:
    """Three or more field lines in a row ("Feladó: …", "件名: …") with an address, a time
    and a ticket's tag: the header block above a copy of a ticket's mail. (Someone's own
    "Ticket: [CID-1042]", "Kunde: Max <max@…>" lines name no time.)"""
    spans: list[Span] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _ANY_FIELD.match(lines[j].lstrip("> ")):
            j += 1
        block = "\n".join(lines[i:j])
        found = "@" in block and _TAG.search(block) and _TIME.search(block)
        if j - i >= _UNKNOWN_BLOCK_FIELDS and found:
            spans.append((_with_rule_above(lines, i), j))
        i = max(j, i + 1)
    return spans


def _with_rule_above(lines: Sequence[str], start: int) -> int:
    """The block's first line, or the rule above it (Outlook's line of underscores)."""
    above = lines[start - 1].strip() if start else ""
    return start - 1 if above and not above.strip(_SEPARATOR_MARKS) else start


def _is_forward(text: str, marks: Table) -> bool:
    """ "---------- Forwarded message ---------", "Begin forwarded message:" (normalised)."""
    dashed = text.startswith(("---", "___", "===")) or text.endswith(":")
    return dashed and text.strip(_SEPARATOR_MARKS).rstrip(":").strip() in marks.forwards


def is_separator_text(text: str, marks: Table | None = None) -> bool:
    """ "-----Original Message-----" and its translations (a normalised line)."""
    if not text.startswith(("---", "___", "===")):
        return False
    return text.strip(_SEPARATOR_MARKS) in (marks or table()).separators


def _quoted_next(lines: Sequence[str], i: int) -> bool:
    """Whether the next non-blank line after line i is quoted. (Only blank lines are passed
    over, and from a non-blank line: no line is passed over twice.)"""
    for j in range(i + 1, len(lines)):
        if lines[j].strip():
            return is_quoted(lines[j])
    return False


def _attributions(
    lines: Sequence[str], norm: list[str], marked: list[int], marks: Table
) -> list[Span]:
    spans = []
    for end in marked:
        if not norm[end].endswith(":"):  # most lines: nothing more to look at
            continue
        first = end
        while first > end - _ATTRIBUTION_LINES + 1 and first > 0 and norm[first - 1]:
            first -= 1
        window = " ".join(norm[first : end + 1])
        quoted_next = _quoted_next(lines, end)
        # What any attribution needs (_plausible_attribution), looked for first.
        if not quoted_next and not ("@" in window and _DIGIT.search(window)):
            continue
        forms = marks.attributions_in(window)
        found = _attribution_ending_at(norm, first, end, forms) if forms else None
        if found is None:
            continue
        start, form = found
        if _plausible_attribution(" ".join(norm[start : end + 1]), form, quoted_next):
            spans.append((start, end + 1))
    return spans


def _attribution_ending_at(
    norm: list[str], first: int, end: int, forms: set[Form]
) -> tuple[int, Form] | None:
    """The attribution that ends on this line (and starts no higher than `first`), its
    first line and form, or None. A wrapped attribution's last piece alone may look like
    one: the lines up to the leading word, or up to the blank line above, are taken."""
    best = None
    for start in range(end, first - 1, -1):
        text = " ".join(norm[start : end + 1])
        matching = [form for form in forms if form.matches(text)]
        leading = next((form for form in matching if form.leading_word), None)
        if leading is not None:
            return start, leading  # the leading word ("On", "Am") is where it starts
        if not matching or (start < end and norm[start].endswith(_SENTENCE_END)):
            continue
        # Without a leading word: the lines after a blank line (clients put one above the
        # attribution), else the shortest.
        if best is None or start == 0 or not norm[start - 1]:
            best = (start, matching[0])
    return best


def _plausible_attribution(text: str, form: Form, quoted_next: bool) -> bool:
    """Clients put quoted lines below the attribution, or a date and an address in it;
    the writer's own "Am Montag schrieb ich Ihnen:" has neither."""
    digit = bool(_DIGIT.search(text))
    address = "@" in text
    if not form.leading_word and not (digit or address):
        return False
    return quoted_next or (digit and address)


def _field(line: str, marks: Table) -> str | None:
    """The header-block field a line starts with ("von" for "Von: …", "*Von:*", "De :"), or
    None."""
    colon = line.find(":", 0, _FIELD_NAME_LIMIT)
    if colon <= 0:
        return None
    name = lower(line[:colon].strip(_FIELD_TRIM))
    return name if name in marks.fields else None


def _header_blocks(norm: list[str], fields: dict[int, str], marks: Table) -> list[Span]:
    """Runs of two or more field lines, one of them the sender, as Outlook and webmailers
    write them. A line between two fields continues the one above (a wrapped From line)."""
    spans: list[Span] = []
    for start in sorted(fields):
        if start - 1 in fields or (start - 2 in fields and norm[start - 1]):
            continue  # inside a run already looked at
        i, count, sender = start, 0, False
        while True:
            if i in fields:
                count += 1
                sender = sender or fields[i] in marks.senders
            elif not (norm[i] and i + 1 in fields):
                break
            i += 1
            if i >= len(norm):
                break
        if count >= 2 and sender and _plausible_block(norm[start:i], count):
            first = start - 1 if start and _is_intro(norm[start - 1], marks) else start
            spans.append((first, i))
    return spans


def _plausible_block(block: list[str], count: int) -> bool:
    """Two lines "To: all staff" and "Date: Friday" in someone's text are no quote header;
    a real one has an address, a date, or three fields and more."""
    text = "\n".join(block)
    return count >= 3 or "@" in text or bool(_DIGIT.search(text))


def _is_intro(line: str, marks: Table) -> bool:
    return bool(_DIGIT.search(line)) and marks.intros.matches(normalise(line))
