"""Raw bytes to ParsedMail: the entry point of MIME reading (details in reading.mime, the
header fields in header_fields)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.feedparser import BytesFeedParser
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, TypeVar, cast

from mailgate.reading.header_fields import header_fields
from mailgate.reading.mime.aside import restore, set_aside
from mailgate.reading.mime.budgets import (
    HTML_FILE,
    MAX_HTML,
    tags_cut,
    too_deep,
)
from mailgate.reading.mime.charsets import charset_hint, decode_bytes
from mailgate.reading.mime.headers import mended_headers
from mailgate.reading.mime.htmlquote import read_html
from mailgate.reading.mime.htmltext import sanitize_html
from mailgate.reading.mime.limits import check_raw
from mailgate.reading.mime.parts import Walked
from mailgate.reading.mime.walk import walk


@dataclass(frozen=True)
class MailPart:
    """One attachment or inline part, with its real (decoded, made safe) file name."""

    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None  # without angle brackets; set for inline `cid:` parts
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    """What the later stages need to know of one message. parse() always returns one, even for
    input it could not read: what went wrong is named in `defects` ("parse-failed:..." when
    even the MIME structure was lost and `text` is the raw input)."""

    message_id: str | None  # without angle brackets
    subject: str  # decoded and unfolded, prefixes kept
    from_addr: str  # lower-cased bare address, "" when there is none
    from_name: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    delivered_to: tuple[str, ...] = ()  # Delivered-To, then X-Original-To
    date: datetime | None = None  # timezone-aware when the header had a zone
    in_reply_to: tuple[str, ...] = ()  # message ids without angle brackets
    references: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> first value
    text: str = ""
    html: str | None = None  # sanitised
    # An HTML-only mail whose markup shows a quoted history: the text without it (the
    # writer's part, read before the structure was flattened away); else None.
    html_written: str | None = None
    html_forwarded: str = ""  # in such a mail, a forwarded original sent along, as text
    parts: tuple[MailPart, ...] = ()
    report_type: str | None = None  # e.g. "delivery-status" for multipart/report
    report_original_ids: tuple[str, ...] = ()  # Message-IDs of the mail a report is about
    report_failed_recipients: tuple[str, ...] = ()
    # A delivery report's reason for each failure, as the receiving server gave it.
    report_diagnostics: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    # Every From header as received (decoded), kept only when the From is ambiguous: staff
    # see it on the ticket, since it names nobody the desk may take it for.
    from_headers: tuple[str, ...] = ()
    # What once_per_mail functions computed from it, by function.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


T = TypeVar("T")


def once_per_mail(compute: Callable[[ParsedMail], T]) -> Callable[[ParsedMail], T]:
    """A function of the parsed mail alone, computed once a mail: the result is kept with it,
    and goes along where the mail goes (from the process that parsed it ahead, say)."""
    name = f"{compute.__module__}.{compute.__qualname__}"

    @functools.wraps(compute)
    def once(mail: ParsedMail) -> T:
        if name not in mail.derived:
            mail.derived[name] = compute(mail)
        return cast(T, mail.derived[name])

    return once


# --- headers ----------------------------------------------------------------------------------


def _join_text(chunks: list[str]) -> str:
    text = "\n\n".join(chunk.strip("\n") for chunk in chunks)
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def _body_fields(walked: Walked) -> dict[str, Any]:
    html_source = "\n".join(walked.html) if walked.html else walked.tnef_html
    parts = [MailPart(*attachment) for attachment in walked.attachments]
    over_size = html_source is not None and len(html_source) > MAX_HTML
    over_depth = html_source is not None and not over_size and too_deep(html_source)
    over_budget = over_size or over_depth
    if over_budget:
        walked.add("budget:html" if over_size else "budget:depth")
        parts.append(MailPart(HTML_FILE, "text/html", html_source.encode("utf-8", "replace")))
    text, written, forwarded = _join_text(walked.plain), None, ""
    if not text.strip():
        # HTML-only mail, or an empty text/plain twin of a real HTML body.
        if html_source and over_budget:
            text = tags_cut(html_source)  # no structure is read past the budget
        elif html_source:
            reading = read_html(html_source)
            text, written, forwarded = reading.text, reading.written, reading.forwarded
        elif walked.tnef_text:
            text = _join_text([walked.tnef_text])
    return {
        "text": text,
        "html_written": written,
        "html_forwarded": forwarded,
        "html": None if html_source is None or over_budget else sanitize_html(html_source),
        "parts": tuple(parts),
        "report_type": walked.report_type,
        "report_original_ids": tuple(walked.report_ids),
        "report_failed_recipients": tuple(walked.report_failed),
        "report_diagnostics": tuple(walked.report_diagnostics),
    }


# --- entry point ------------------------------------------------------------------------------


def parse(raw: bytes) -> ParsedMail:
    """Parse one message. Never raises: what could not be read is named in `defects`."""
    try:
        return _parse(bytes(raw))
    except Exception as exc:  # the parser must not be the reason a mail is lost
        return _salvage(raw, exc)


_FEED_CHUNK = 1 << 16


def _message(raw: bytes) -> Message:
    """The MIME tree, with large base64 bodies decoded aside (mime/aside.py); the raw bytes
    parsed as they are when a stand-in did not come out where it belongs."""
    fed, aside = set_aside(raw)
    msg = _fed(fed)
    if aside and not restore(msg, aside):
        msg = _fed(raw)
    return msg


def _fed(raw: bytes) -> Message:
    """The MIME tree, fed to the parser in pieces. email.message_from_bytes would first
    decode the whole message into one string and wrap it in a StringIO, which holds it at
    four bytes a character: over 130 MB at once for a 34 MB mail with a large attachment."""
    parser = BytesFeedParser(policy=compat32)
    view = memoryview(raw)
    for start in range(0, len(raw), _FEED_CHUNK):
        parser.feed(bytes(view[start : start + _FEED_CHUNK]))
    return parser.close()


def _parse(raw: bytes) -> ParsedMail:
    raw, notes = check_raw(raw)
    if any(note.startswith("limit:") for note in notes):
        return _headers_only(raw, notes)
    msg = _message(raw)
    hint = None if raw.isascii() else charset_hint(raw)  # a hint only helps with 8-bit bytes
    if (mended := mended_headers(raw, msg)) is not None:
        msg = _message(mended)
        notes.append("headers-repaired")
    try:
        fields = header_fields(msg, hint, notes)
    except Exception as exc:  # keep the body even when the headers defeat us
        fields = {"message_id": None, "subject": "", "from_addr": "", "from_name": ""}
        notes.append(f"headers-failed:{type(exc).__name__}")
    try:
        walked = walk(msg, hint)
        body = _body_fields(walked)
        notes[:0] = walked.defects
    except Exception as exc:  # keep the headers even when the MIME tree defeats us
        body = {"text": _raw_text(raw)}
        notes.append(f"body-failed:{type(exc).__name__}")
    return ParsedMail(**fields, **body, defects=tuple(dict.fromkeys(notes)))


def _raw_text(raw: bytes) -> str:
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return decode_bytes(body or head).text.replace("\x00", "")


def _headers_only(raw: bytes, notes: list[str]) -> ParsedMail:
    """Over a limit: the headers (for screening and the quarantine listing), the body as raw
    text, no MIME tree; the message is quarantined, so nothing more is needed."""
    head, _, _ = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    msg = BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n")
    fields = header_fields(msg, None, notes)
    return ParsedMail(**fields, text=_raw_text(raw), defects=tuple(dict.fromkeys(notes)))


def _salvage(raw: object, exc: Exception) -> ParsedMail:
    """Last resort (e.g. the stdlib parser recursing on absurd nesting): headers from a
    header-only parse, the rest of the input as text, so nothing the sender wrote is lost."""
    notes = [f"parse-failed:{type(exc).__name__}"]
    fields: dict[str, Any] = {"message_id": None, "subject": "", "from_addr": "", "from_name": ""}
    text = ""
    try:
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
        text = _raw_text(data)
        fields = header_fields(BytesHeaderParser(policy=compat32).parsebytes(data), None, notes)
    except Exception:  # keep whatever was obtained before the second failure
        pass
    return ParsedMail(**fields, text=text, defects=tuple(dict.fromkeys(notes)))
