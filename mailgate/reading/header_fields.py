"""The header fields a ticket needs, read with care: From and the other address headers
(groups, several mailboxes, display names that name another address), Date, Message-IDs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from mailparser.dates import parse_mail_date
from mailparser.utils import get_addresses

from mailgate.reading.mime.budgets import comments_flattened
from mailgate.reading.mime.charsets import decode_bytes
from mailgate.reading.mime.headers import decode_header
from mailgate.reading.mime.parts import message_ids, raw_bytes

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


def header_fields(msg: Message, hint: str | None, notes: list[str]) -> dict[str, Any]:
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
