"""Large base64 parts decoded straight from the raw bytes, before the stdlib parser runs.

The stdlib's parser keeps every line of a part as a string of its own and joins them at the
part's end: a 25 MB attachment (34 MB as base64) held as half a million strings, then once
more as one, then decoded - about three times the message at once. Its bytes are decoded
here instead, in one go, and the parser gets a one-line stand-in. The parsed part then
carries the decoded bytes, which payload_bytes() hands out.

Only what is certainly a part's whole body is set aside: a base64 body of LARGE bytes or
more, nothing but base64 characters, right after a header block that follows a boundary.
restore() checks that each stand-in came out as the whole payload of a base64 leaf outside
any embedded message (which would be written out again, stand-in and all); when one did
not, the caller parses the untouched bytes instead.
"""

from __future__ import annotations

import binascii
import re
import secrets
from email.message import Message

from mailgate.reading.mime.parts import SET_ASIDE, children, transfer_encoding

LARGE = 1 << 20

_BASE64_CTE = re.compile(rb"^content-transfer-encoding:[ \t]*base64[ \t]*\r?$", re.I | re.M)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_BOUNDARY_LINE = re.compile(rb"\r?\n--")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=\r\n]")


def set_aside(raw: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The bytes for the parser, with each large base64 body replaced by a stand-in; the
    decoded bodies by stand-in."""
    if len(raw) < LARGE:
        return raw, {}
    pieces: list[bytes] = []
    aside: dict[str, bytes] = {}
    done = 0  # raw[:done] is in pieces
    for match in _BASE64_CTE.finditer(raw):
        if match.start() < done:
            continue
        body = _part_body(raw, match)
        if body is None:
            continue
        start, end = body
        try:
            data = binascii.a2b_base64(memoryview(raw)[start:end])
        except binascii.Error:  # bad padding: the lenient decoder of the usual way repairs it
            continue
        stand_in = f"mailgateaside{len(aside)}x{secrets.token_hex(8)}"
        pieces += [raw[done:start], stand_in.encode("ascii")]
        aside[stand_in] = data
        done = end
    if not aside:
        return raw, {}
    pieces.append(raw[done:])
    return b"".join(pieces), aside


def _part_body(raw: bytes, cte: re.Match[bytes]) -> tuple[int, int] | None:
    """(start, end) of the body whose header block holds this Content-Transfer-Encoding
    line, when that block follows a boundary line and the body is large and all base64."""
    boundary = raw.rfind(b"\n--", 0, cte.start())
    if boundary < 0 or _BLANK_LINE.search(raw, boundary, cte.start()):
        return None  # the top-level header block, or not a header block at all
    blank = _BLANK_LINE.search(raw, cte.end())
    if blank is None:
        return None
    start = blank.end()
    following = _BOUNDARY_LINE.search(raw, start)
    if following is None:
        return None
    end = following.start()
    if end - start < LARGE or _NOT_BASE64.search(raw, start, end):
        return None
    return start, end


def restore(msg: Message, aside: dict[str, bytes]) -> bool:
    """Give each stand-in's part its decoded bytes; False when a stand-in is not the whole
    payload of one base64 leaf outside embedded messages (then parse the raw bytes)."""
    found: dict[str, Message] = {}
    if not _find(msg, aside, found, inside_message=False) or found.keys() != aside.keys():
        return False
    for stand_in, part in found.items():
        setattr(part, SET_ASIDE, aside[stand_in])
    return True


def _find(
    part: Message, aside: dict[str, bytes], found: dict[str, Message], inside_message: bool
) -> bool:
    inner = children(part)
    if inner:
        within = inside_message or part.get_content_maintype() == "message"
        return all(_find(child, aside, found, within) for child in inner)
    payload = part._payload
    stand_in = payload.strip() if isinstance(payload, str) and len(payload) < 100 else ""
    if stand_in not in aside:
        return True
    if inside_message or stand_in in found or transfer_encoding(part) != "base64":
        return False
    found[stand_in] = part
    return True
