"""Raw bytes to ParsedMail: the entry point of MIME reading (details in mailgate.mime)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.feedparser import BytesFeedParser
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, TypeVar, cast

from mailparser.dates import parse_mail_date
from mailparser.utils import get_addresses

from mailgate.reading.mime.aside import restore, set_aside
from mailgate.reading.mime.budgets import (
    HTML_FILE,
    MAX_HTML,
    comments_flattened,
    tags_cut,
    too_deep,
)
from mailgate.reading.mime.charsets import charset_hint, decode_bytes
from mailgate.reading.mime.headers import decode_header, mended_headers
from mailgate.reading.mime.htmlquote import read_html
from mailgate.reading.mime.htmltext import sanitize_html
from mailgate.reading.mime.limits import check_raw
from mailgate.reading.mime.parts import Walked, message_ids, raw_bytes
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

AMBIGUOUS_FROM = "ambiguous-from"  # the defect of a From that names no single clean address
# No control characters: an address is printed to terminals and written into headers.
_ADDR_SPEC = re.compile(r"[^@\s<>(),;:\"\[\]\\\x00-\x1f\x7f]+@[^@\s<>(),;:\"\[\]\\\x00-\x1f\x7f]+")
_ADDRESS_HEADERS = ("from", "reply-to", "to", "cc", "delivered-to", "x-original-to")


class _Headers:
    """Raw header values by lower-case name, decoded lazily with the message's charset hint."""

    def __init__(self, msg: Message, hint: str | None) -> None:
        self.hint = hint
        self.notes: list[str] = []
        self.raw: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            self.raw.setdefault(str(name).strip().lower(), []).append(str(value))

    def text(self, value: str) -> str:
        decoded, notes = decode_header(raw_bytes(value), self.hint)
        self.notes.extend(notes)
        return decoded

    def first(self, name: str) -> str:
        values = self.raw.get(name)
        return self.text(values[0]) if values else ""

    def joined(self, name: str) -> str:
        return " ".join(self.text(value) for value in self.raw.get(name, []))

    def decoded_dict(self) -> dict[str, str]:
        return {name: self.text(values[0]) for name, values in self.raw.items()}

    def unstructured_8bit(self, name: str) -> str:
        """All values of an address header joined, raw 8-bit decoded, encoded words kept."""
        values = [decode_bytes(raw_bytes(v), None, self.hint).text for v in self.raw.get(name, [])]
        return re.sub(r"[\r\n]+", " ", ", ".join(values)).replace("\x00", "")


def _display_name(name: str) -> str:
    # Encoded words inside quotes are illegal but common; the name is only shown, so decode.
    return decode_header(name.encode("utf-8"))[0] if "=?" in name else name.strip()


def _careful_mailboxes(value: str, notes: list[str], header: str) -> list[tuple[str, str]]:
    """mail-parser's parser: refuses ambiguous mailboxes (CVE-2023-27043 style) and says why."""
    diagnostics: list[dict[str, object]] = []
    try:
        pairs = get_addresses(value, defects=diagnostics, decode_names=True)
    except Exception:  # its parser is strict, not infallible; fall back to the stdlib
        pairs = getaddresses([value])
        notes.append(f"address-parser-failed:{header}")
    notes.extend(f"address:{header}:{d.get('reason')}" for d in diagnostics)
    return [(name, addr) for name, addr in pairs if _ADDR_SPEC.fullmatch(addr)]


def _mailboxes(headers: _Headers, name: str, notes: list[str]) -> list[tuple[str, str]]:
    value = headers.unstructured_8bit(name)
    if not value.strip():
        return []
    if (flat := comments_flattened(value)) is not None:
        notes.append(f"budget:address:{name}")
        value = flat
    if name in ("from", "reply-to"):
        pairs = _careful_mailboxes(value, notes, name)
    else:
        pairs = [(n, a) for n, a in getaddresses([value]) if _ADDR_SPEC.fullmatch(a)]
    if not pairs and (found := _ADDR_SPEC.findall(value)):
        # "tim@x concierge@x" or "Big Bug bb@bug.com": no mailbox syntax, but plain addresses.
        notes.append(f"address-recovered:{name}")
        pairs = [("", a.strip(".")) for a in found]
    return [(_display_name(n), a.lower()) for n, a in pairs]


def _addresses(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(addr for _, addr in pairs))


def _date(value: str, notes: list[str]) -> datetime | None:
    if not value:
        notes.append("no-date")
        return None
    try:
        parsed: datetime | None = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    try:  # mail-parser: RFC 5322 checks the stdlib skips (weekday, ranges, zone syntax)
        strict = parse_mail_date(value)
    except Exception:
        strict = None
    if strict is not None:
        notes.extend(f"date:{reason}" for reason in strict.reasons)
        parsed = parsed or strict.value  # UTC; accepts a few forms the stdlib rejects
    if parsed is None:
        notes.append("bad-date")
    elif parsed.tzinfo is None:  # "-0000" or an unknown zone: RFC 5322 says treat as UTC
        notes.append("date-zone-unknown")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _header_fields(msg: Message, hint: str | None, notes: list[str]) -> dict[str, Any]:
    headers = _Headers(msg, hint)
    before = len(notes)
    boxes = {name: _mailboxes(headers, name, notes) for name in _ADDRESS_HEADERS}
    sender = boxes["from"][0] if boxes["from"] else ("", "")
    _note_sender(headers, boxes["from"], notes)
    if _ambiguous_from(headers, boxes["from"], notes[before:]):
        # Whoever it names, it may name someone else too: no address is taken from it.
        notes.append(AMBIGUOUS_FROM)
        sender = ("", "")
        from_headers = tuple(headers.text(value) for value in headers.raw.get("from", []))
    else:
        from_headers = ()
    message_id = next(iter(message_ids(headers.first("message-id"))), None)
    if message_id is None:
        notes.append("no-message-id")
    fields = {
        "message_id": message_id,
        "subject": headers.first("subject"),
        "from_addr": sender[1],
        "from_name": sender[0],
        "from_headers": from_headers,
        "to": _addresses(boxes["to"]),
        "cc": _addresses(boxes["cc"]),
        "reply_to": _addresses(boxes["reply-to"]),
        "delivered_to": _addresses(boxes["delivered-to"] + boxes["x-original-to"]),
        "date": _date(headers.first("date"), notes),
        "in_reply_to": tuple(message_ids(headers.first("in-reply-to"))),
        "references": tuple(message_ids(headers.joined("references"))),
        "headers": headers.decoded_dict(),
    }
    notes.extend(headers.notes)
    return fields


def _note_sender(headers: _Headers, senders: list[tuple[str, str]], notes: list[str]) -> None:
    if not headers.raw:
        notes.append("no-headers")
    if len(headers.raw.get("from", [])) > 1:
        notes.append("multiple-from-headers")
    if len(senders) > 1:
        notes.append("multiple-from-addresses")
    if not senders:
        notes.append("no-from")


def _ambiguous_from(headers: _Headers, senders: list[tuple[str, str]], notes: list[str]) -> bool:
    """Whether the From names anything but exactly one clean address: two headers, two
    addresses, a group, or anything the strict parser had to guess at (junk after `>`, two
    angle addresses, an unquoted address as the display name of another)."""
    if len(headers.raw.get("from", [])) > 1 or len(senders) > 1:
        return True
    guessed = ("address:from:", "address-recovered:from", "address-parser-failed:from")
    doubtful = [n for n in notes if n.startswith(guessed)]
    if doubtful == ["address:from:invalid-display-name"] and senders:
        # Unquoted `alice@customer.test <attacker@evil.test>` is two addresses; the same one
        # twice is a habit of some mailers. (A quoted name is only hidden from staff.)
        return _names_other_address(senders[0])
    if doubtful:
        return True
    return _is_group(headers.unstructured_8bit("from"))


def _names_other_address(sender: tuple[str, str]) -> bool:
    name, address = sender
    return any(found.lower() != address for found in _ADDR_SPEC.findall(name))


def _is_group(value: str) -> bool:
    """Group syntax (`Customers: alice@customer.test;`): a list of people, not a sender."""
    if ":" not in value:
        return False
    try:
        groups = HeaderRegistry()("from", value).groups
    except Exception:  # the registry's parser is lenient, but it is no judge of hostile input
        return True
    return any(group.display_name is not None for group in groups)


# --- body -------------------------------------------------------------------------------------


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
        fields = _header_fields(msg, hint, notes)
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
    fields = _header_fields(msg, None, notes)
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
        fields = _header_fields(BytesHeaderParser(policy=compat32).parsebytes(data), None, notes)
    except Exception:  # keep whatever was obtained before the second failure
        pass
    return ParsedMail(**fields, text=text, defects=tuple(dict.fromkeys(notes)))
