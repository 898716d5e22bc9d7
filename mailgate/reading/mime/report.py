"""Bounce and receipt reports (RFC 3464/3462/8098): failed recipients and original ids."""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser

from mailgate.reading.mime.parts import (
    Walked,
    append,
    blocks_bytes,
    children,
    decoded,
    message_ids,
    payload_bytes,
)


def collect_ids(headers: Message, walked: Walked, field_name: str = "message-id") -> None:
    """Note the ids a report is about (of the returned message or its headers)."""
    for value in headers.get_all(field_name) or []:
        for mid in message_ids(decoded(value)):
            if mid not in walked.report_ids:
                walked.report_ids.append(mid)


def add_headers_part(part: Message, walked: Walked, parent: str) -> None:
    """text/rfc822-headers: the returned message's header block, kept as a file."""
    data = payload_bytes(part, walked)
    if parent == "report":
        collect_ids(BytesHeaderParser().parsebytes(data), walked)
    append(walked, None, "text/rfc822-headers", data)


def _status_blocks(part: Message, walked: Walked) -> tuple[list[Message], bytes]:
    if part.is_multipart():
        blocks = children(part)
        return blocks, blocks_bytes(blocks)
    # Transfer-encoded reports arrive as one string: split the field groups ourselves.
    data = payload_bytes(part, walked)
    text = data.replace(b"\r\n", b"\n").decode("utf-8", "surrogateescape")
    parser = HeaderParser()
    return [parser.parsestr(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk.strip()], data


def add_message_fields(part: Message, walked: Walked, parent: str) -> None:
    """Other message/* parts (read receipts, feedback reports): the stdlib parsed their fields
    as a message; keep them as one file, and a receipt's Original-Message-ID."""
    blocks = children(part)
    if parent == "report":
        for block in blocks:
            collect_ids(block, walked, "original-message-id")
    append(walked, None, part.get_content_type(), blocks_bytes(blocks))


def _dsn_address(value: object) -> str | None:
    text = decoded(value).rpartition(";")[2].strip()
    address = text.split()[0].strip("<>").lower() if text else ""
    return address if "@" in address else None


def add_delivery_status(part: Message, walked: Walked) -> None:
    """Failed recipients: per-recipient blocks whose Action is failed, or that have none."""
    blocks, data = _status_blocks(part, walked)
    for block in blocks:
        action = str(block.get("action", "")).strip().lower()
        if action and not action.startswith("failed"):
            continue  # delayed, delivered, relayed, expanded: not a failure
        for field_name in ("final-recipient", "original-recipient"):
            address = _dsn_address(block.get(field_name, ""))
            if address and address not in walked.report_failed:
                walked.report_failed.append(address)
        said = _diagnostic(block)
        if said and said not in walked.report_diagnostics:
            walked.report_diagnostics.append(said)
    append(walked, None, "message/delivery-status", data)


def _diagnostic(block: Message) -> str:
    """What the receiving server answered ("550 5.1.1 User unknown", its type "smtp;" left
    off), else the status code: the reason, without the report's boilerplate around it."""
    code = " ".join(decoded(block.get("diagnostic-code", "")).split())
    said = code.partition(";")[2].strip() if ";" in code else code
    return said or " ".join(decoded(block.get("status", "")).split())


def report_type(part: Message) -> str | None:
    """The report-type parameter of a multipart/report, lower-cased."""
    value = part.get_param("report-type")
    if isinstance(value, tuple):
        value = value[2]
    return (str(value).strip().lower() or None) if value else None


# --- non-standard reports: plain-text bounces without multipart/report -------------------------

QMAIL_OPENING = "Hi. This is the qmail-send program"
_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s@]+@[^<>\s@]+)>:", re.MULTILINE)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Exchange/Outlook name the failed recipients after one of these lines, or inline.
_EXCHANGE_LIST_HEADING = re.compile(
    r"(delivery has failed to these recipients or groups|"
    r"zustellung an folgende empfänger oder gruppen ist fehlgeschlagen)",
    re.IGNORECASE,
)
_EXCHANGE_INLINE = re.compile(
    r"(?:your message to|ihre nachricht an)\s+<?([^\s<>]+@[^\s<>]+?)>?\s+"
    r"(?:couldn't|could not|konnte nicht)",
    re.IGNORECASE,
)


def is_qmail_bounce(text: str) -> bool:
    return text.lstrip().startswith(QMAIL_OPENING)


def qmail_failed_recipients(text: str) -> list[str]:
    """qmail names each failed address on a line of its own as `<addr>:`."""
    if not is_qmail_bounce(text):
        return []
    # Only the report part: qmail appends the returned message after this line.
    report = text.split("--- Below this line is a copy of the message.", 1)[0]
    return list(dict.fromkeys(a.lower() for a in _QMAIL_RECIPIENT.findall(report)))


def exchange_failed_recipients(text: str) -> list[str]:
    """Addresses an Exchange/Outlook NDR lists after its heading, or names inline."""
    found = [a.lower() for a in _EXCHANGE_INLINE.findall(text)]
    heading = _EXCHANGE_LIST_HEADING.search(text)
    listed: list[str] = []
    if heading:
        # The list runs until the first blank line after at least one address; a line
        # may repeat the address in brackets, so only its first one counts.
        for line in text[heading.end() :].splitlines()[1:]:
            addresses = _ADDRESS.findall(line)
            if not addresses and listed and not line.strip():
                break
            listed.extend(a.lower() for a in addresses[:1])
    return list(dict.fromkeys(a.strip(".") for a in (*found, *listed)))


def qmail_original_ids(text: str) -> list[str]:
    """Message-IDs in the copy of the returned message that a qmail bounce appends."""
    if not is_qmail_bounce(text):
        return []
    _, _, copy = text.partition("--- Below this line is a copy of the message.")
    head = re.split(r"\n\s*\n", copy.lstrip("\n"), maxsplit=1)[0]
    return list(dict.fromkeys(re.findall(r"(?im)^message-id:\s*<([^<>\s]+)>", head)))


# --- any text bounce: where the report ends, what it names, what it says ----------------------

# Where a text bounce's copy of the returned message begins (a marker line, or the first
# header line of the copy): addresses after it are the returned mail's, not the report's.
_RETURNED_COPY = re.compile(
    r"^(?:\s*-{2,}.*(?:copy of|original message|ursprüngliche nachricht|returned message|"
    r"below this line|message headers).*"
    r"|(?:return-path|received|message-id|from|to|cc|subject|date):.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_RETURNED_MESSAGE_ID = re.compile(r"(?im)^\s*message-id:\s*<([^<>\s]+)>")


def report_part(text: str) -> str:
    """A text bounce without the copy of the returned message that may follow it."""
    found = _RETURNED_COPY.search(text)
    return text[: found.start()] if found else text


def text_addresses(text: str) -> list[str]:
    """Every address the report part of a text bounce names, in order, once each."""
    found = (a.lower().strip(".") for a in _ADDRESS.findall(report_part(text)))
    return list(dict.fromkeys(found))


def returned_message_ids(text: str) -> list[str]:
    """Message-IDs of the returned message a text bounce quotes (Exim, Postfix, Sendmail,
    or a report whose MIME structure could not be read)."""
    return list(dict.fromkeys(_RETURNED_MESSAGE_ID.findall(text)))


def bounce_summary(text: str, limit: int = 300) -> str:
    """What a bounce says, for staff: its report's lines run together, cut at `limit`."""
    lines = [line.strip() for line in report_part(text).splitlines()]
    said = " ".join(line for line in lines if line and not line.startswith("--"))
    return said if len(said) <= limit else said[: limit - 1].rstrip() + "…"
