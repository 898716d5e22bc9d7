"""Size limits against hostile MIME: checked on the raw bytes before the stdlib parser runs."""

from __future__ import annotations

import re

MAX_NESTING = 20  # real mail nests a handful of levels; deeper is an attack or a loop
MAX_PARTS = 500
MAX_HEADERS = 1000
MAX_HEADER_BYTES = 64 * 1024

# A Content-Type line after a newline; the first line is looked at on its own. Spelled out
# in both cases rather than IGNORECASE: with the newline first, the regex engine skips
# from newline to newline, eight times as fast over a whole mail.
_CONTENT_TYPE_LINE = re.compile(rb"\n[cC][oO][nN][tT][eE][nN][tT]-[tT][yY][pP][eE][ \t]*:")
_CONTENT_TYPE_FIRST = re.compile(rb"content-type[ \t]*:", re.IGNORECASE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _header_end(raw: bytes) -> int:
    """Where the top-level header block ends (the separator starts there)."""
    match = _HEADER_END.search(raw)
    return len(raw) if match is None else match.start()


def _fields(block: bytes) -> list[bytes]:
    """Header fields with their continuation lines, line endings kept."""
    fields: list[bytes] = []
    for line in block.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def check_raw(raw: bytes) -> tuple[bytes, list[str]]:
    """The bytes to parse and what was wrong. `limit:*` defects mean the message must not be
    parsed further (the caller keeps headers only); an over-long header is cut instead, since
    one giant References or To header is no reason to lose an otherwise readable mail."""
    defects: list[str] = []
    # Counting Content-Type lines bounds the part count before the parser builds the tree:
    # the stdlib spends seconds (and recursion) on tens of thousands of parts or levels.
    content_types = len(_CONTENT_TYPE_LINE.findall(raw)) + bool(_CONTENT_TYPE_FIRST.match(raw))
    if content_types > MAX_PARTS + 1:
        defects.append("limit:part-count")
    end = _header_end(raw)
    fields = _fields(raw[:end])
    if len(fields) > MAX_HEADERS:
        defects.append("limit:header-count")
    if any(len(field) > MAX_HEADER_BYTES for field in fields):
        cut = [_cut(field) for field in fields]
        defects.extend(f"header-truncated:{_name(f)}" for f in fields if len(f) > MAX_HEADER_BYTES)
        raw = b"".join(cut) + raw[end:]  # the body copied only in this rare case
    return raw, list(dict.fromkeys(defects))


def _name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()[:60]


def _cut(field: bytes) -> bytes:
    if len(field) <= MAX_HEADER_BYTES:
        return field
    ending = b"\r\n" if field.endswith(b"\r\n") else b"\n"
    return field[:MAX_HEADER_BYTES].rstrip(b"\r\n") + ending
