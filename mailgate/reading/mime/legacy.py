"""Pre-MIME and Outlook-only encodings: uuencoded blocks in text, TNEF (winmail.dat) files."""

from __future__ import annotations

import binascii
import re
from bisect import bisect_left
from dataclasses import dataclass, field

from tnefparse.tnef import TNEF

from mailgate.reading.mime.charsets import decode_bytes

_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n", re.MULTILINE)
_UU_END = re.compile(r"^end[ \t]*\r?$", re.MULTILINE)
_UU_LINE = re.compile(r"[ -`]*")  # the uuencode alphabet; prose never fits it


def _uudecode(block: str) -> bytes | None:
    chunks: list[bytes] = []
    for line in block.splitlines():
        if not line or _UU_LINE.fullmatch(line) is None:
            return None if line else _finish(chunks)
        raw = line.encode("ascii")
        try:
            chunks.append(binascii.a2b_uu(raw))
        except binascii.Error:
            # Encoders pad lines with junk past the length byte; decode only what it promises.
            length = (((raw[0] - 32) & 63) * 4 + 5) // 3
            try:
                chunks.append(binascii.a2b_uu(raw[:length]))
            except binascii.Error:
                return None
    return _finish(chunks)


def _finish(chunks: list[bytes]) -> bytes | None:
    return b"".join(chunks) if chunks else None


def extract_uuencoded(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Cut `begin 644 name ... end` blocks out of text; returns (text, [(name, data)])."""
    if "begin " not in text:
        return text, []
    # Each begin is paired with the next end by a lookup in one list of the ends, and a
    # block is passed over once: a search from every begin line to the next end (a lazy
    # regex) grew with the square of the text when the ends were missing (16 s for 220 KB).
    ends = list(_UU_END.finditer(text))
    end_starts = [end.start() for end in ends]
    files: list[tuple[str, bytes]] = []
    kept: list[str] = []
    done = 0  # text before this is copied or cut
    passed = 0  # begin lines before this lie inside a block already looked at
    for begin in _UU_BEGIN.finditer(text):
        if begin.start() < passed:
            continue
        index = bisect_left(end_starts, begin.end())
        if index == len(ends):
            break
        end = ends[index]
        passed = end.end()
        data = _uudecode(text[begin.end() : end.start()])
        if data is None:
            continue  # not really uuencode: leave the text alone
        files.append((begin.group(1).strip(), data))
        kept.append(text[done : begin.start()])
        done = end.end()
    kept.append(text[done:])
    return "".join(kept), files


@dataclass
class TnefContent:
    """What a winmail.dat carried."""

    text: str | None = None
    html: str | None = None
    files: list[tuple[str, bytes]] = field(default_factory=list)


def _as_text(value: object, codepage: str | None) -> str | None:
    if isinstance(value, bytes):
        value = decode_bytes(value.rstrip(b"\x00"), codepage).text
    if isinstance(value, str) and value.strip("\x00 \r\n"):
        return value.rstrip("\x00")
    return None


def _attachment_name(attachment: object, codepage: str | None) -> str:
    try:
        name: object = attachment.long_filename()  # type: ignore[attr-defined]
    except Exception:  # tnefparse decodes 8-bit titles as UTF-8 and raises on cp1252
        name = getattr(attachment, "_name", b"")
    return _as_text(name, codepage) or ""


def unpack_tnef(data: bytes) -> TnefContent | None:
    """Body and files of a TNEF blob; None when it is not readable TNEF or yields nothing."""
    try:
        tnef = TNEF(data, do_checksum=False)
        codepage = tnef.codepage
        files = [
            (_attachment_name(att, codepage), bytes(att.data or b"")) for att in tnef.attachments
        ]
        text, html = _as_text(tnef.body, codepage), _as_text(tnef.htmlbody, codepage)
        content = TnefContent(text, html, files)
    except Exception:  # tnefparse raises anything from ValueError to NameError on bad input
        return None
    # A blob that yields nothing was not understood: better keep the original file.
    return content if content.text or content.html or content.files else None
