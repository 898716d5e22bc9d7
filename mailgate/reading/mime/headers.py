"""Header text: RFC 2047 encoded words and raw 8-bit values to one line, broken blocks mended."""

from __future__ import annotations

import binascii
import re
from email.message import Message
from typing import NamedTuple

from mailgate.reading.mime.charsets import codec_label, decode_bytes


def b64decode_lenient(data: bytes) -> tuple[bytes, bool]:
    """Base64 that survives bad padding and junk; returns (bytes, decoded_without_repair)."""
    try:  # non-strict mode already skips line breaks and stray characters
        return binascii.a2b_base64(data), True
    except binascii.Error:
        pass
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(clean) % 4 == 1:  # one dangling sextet cannot carry a byte
        clean = clean[:-1]
    try:
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4)), False
    except binascii.Error:
        return b"", False


_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\r\n]*)\?=")
_WHITESPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


class _Piece(NamedTuple):
    data: bytes
    charset: str | None  # None: literal text between encoded words
    well_formed: bool = True


def _word(match: re.Match[bytes]) -> _Piece:
    charset = match.group(1).decode("ascii", "replace").split("*", 1)[0].lower()
    text = match.group(3)
    if match.group(2) in b"bB":
        data, ok = b64decode_lenient(text)
        return _Piece(data, charset, ok)
    try:
        return _Piece(binascii.a2b_qp(text, header=True), charset)
    except (binascii.Error, ValueError):
        return _Piece(text, charset, False)


def _split_words(raw: bytes) -> list[_Piece]:
    """Split a header into literal runs and decoded encoded words."""
    pieces: list[_Piece] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(raw):
        literal = raw[pos : match.start()]
        pos = match.end()
        after_word = bool(pieces) and pieces[-1].charset is not None
        if literal and not (after_word and literal.isspace()):  # RFC 2047 section 6.2
            pieces.append(_Piece(literal, None))
        word = _word(match)
        last = pieces[-1] if pieces else None
        if last and last.charset == word.charset and last.well_formed and word.well_formed:
            # Multi-byte characters are often split across adjacent encoded words.
            pieces[-1] = _Piece(last.data + word.data, word.charset)
        else:
            pieces.append(word)
    if pos < len(raw):
        pieces.append(_Piece(raw[pos:], None))
    return pieces


def decode_header(raw: bytes, hint: str | None = None) -> tuple[str, list[str]]:
    """Decode a raw header value (RFC 2047 words and raw 8-bit) to one unfolded line."""
    notes: list[str] = []
    texts: list[str] = []
    for piece in _split_words(raw) if b"=?" in raw else [_Piece(raw, None)]:
        if not piece.well_formed:
            notes.append("bad-encoded-word")
        result = decode_bytes(piece.data, piece.charset, hint)
        if result.fallback:
            notes.append(f"header-charset-fallback:{codec_label(result.charset)}")
        texts.append(result.text)
    return _WHITESPACE.sub(" ", "".join(texts)).strip(), notes


_HEADER_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]|From ")
_OBSOLETE_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]+:")  # RFC 5322 4.5: "Subject :"
_KEY_HEADER = re.compile(rb"^(from|date|subject|message-id)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _mend(line: bytes) -> bytes:
    if not line.strip() or _HEADER_START.match(line):
        return line
    if match := _OBSOLETE_NAME.match(line):
        return match.group(1) + b":" + line[match.end() :]
    return b" " + line  # a stray line: keep it as part of the header above


def mended_headers(raw: bytes, msg: Message) -> bytes | None:
    """The input with its header block mended, when the parser stopped early at a bad line
    and so lost key headers that are visibly there; None otherwise (the usual case)."""
    if not any(type(d).__name__ == "MissingHeaderBodySeparatorDefect" for d in msg.defects):
        return None
    end = match.start() if (match := _BLANK_LINE.search(raw)) else len(raw)
    present = {name.lower().encode() for name in msg}
    if not {name.lower() for name in _KEY_HEADER.findall(raw, 0, end)} - present:
        return None
    lines = raw[:end].splitlines(keepends=True)
    return b"".join(map(_mend, lines)) + raw[end:]
