"""Outgoing message bytes: headers sanitised and addresses checked, MIME built by the stdlib."""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, getaddresses, parseaddr

# CRLF line ends as SMTP wants them; 7-bit transfer encodings so that any relay, with or
# without 8BITMIME, passes the message on unchanged; headers set raw (the msg-id lists) are
# written as given, see _set_threading.
POLICY = policy.SMTP.clone(cte_type="7bit", refold_source="none")
LINE_WIDTH = 78
MAX_REFERENCES = 20
MAX_MSGID_LENGTH = 250
AUTO_SUBMITTED = frozenset({"auto-replied", "auto-generated", "auto-notified"})
# Set by compose itself; an extra header of the same name would make a second copy.
_OWN_HEADERS = frozenset({
    "date", "from", "to", "cc", "bcc", "subject", "message-id", "in-reply-to", "references",
    "reply-to", "auto-submitted", "x-auto-response-suppress", "mime-version",
    "content-type", "content-transfer-encoding", "content-disposition",
})  # fmt: skip
_ADDR_SPEC = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\Z"
)
_MSG_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>\Z")  # printable ASCII without < > and space
_BRACKETED = re.compile(r"<[^<>]*>")
_OUR_MSG_ID = re.compile(r"mailgate\.(\d{1,18})\.[0-9a-f]+@(.+)\Z", re.IGNORECASE)
_HEADER_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 ftext
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*\Z")


class InvalidAddress(ValueError):
    """An address that is not exactly one plain mailbox."""


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """One mail to send, before it becomes bytes. Ids carry angle brackets."""

    from_addr: str
    to: tuple[str, ...]
    subject: str
    text: str
    message_id: str
    html: str | None = None
    cc: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: str | None = None
    auto_submitted: str | None = None  # "auto-replied" | "auto-generated" | None
    extra_headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (filename, content type, data)


def clean_header(value: str) -> str:
    """The one gate for header text: control characters and line breaks become spaces, runs of
    whitespace one space, so no value can end its header line and start another."""
    spaced = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in value)
    return " ".join(spaced.split())


def is_plain_address(addr: str) -> bool:
    """A bare ASCII `local@domain`, nothing a mail or SMTP command could be smuggled in."""
    return bool(_ADDR_SPEC.match(addr))


def address_domain(addr: str) -> str:
    """The domain of an address (with or without a display name), lower case; "" if none."""
    local, at, domain = parseaddr(addr)[1].rpartition("@")
    return domain.lower() if local and at else ""


def parse_address(value: str) -> Address:
    """Exactly one mailbox, display name allowed; anything else raises InvalidAddress."""
    pairs = getaddresses([clean_header(value)])
    if len(pairs) != 1:
        raise InvalidAddress(f"not a single address: {value!r}")
    name, addr = pairs[0]
    local, _, domain = addr.rpartition("@")
    try:
        # Internationalised domains go out in their ASCII (punycode) form.
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(f"bad domain in address: {value!r}") from exc
    if not is_plain_address(f"{local}@{domain}"):
        raise InvalidAddress(f"not a usable address: {value!r}")
    return Address(display_name=clean_header(name), username=local, domain=domain)


_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def thread_index(ticket_number: int, started: datetime, domain: str) -> str:
    """Outlook's Thread-Index for a ticket's conversation: six bytes of the start time as a
    FILETIME, then a GUID. Every mail of the ticket carries the same value, so Outlook
    shows them as one conversation even where the subject has been changed."""
    filetime = int((started - _FILETIME_EPOCH).total_seconds() * 10_000_000)
    guid = uuid.uuid5(uuid.NAMESPACE_DNS, f"ticket-{ticket_number}.{domain}").bytes
    return base64.b64encode(filetime.to_bytes(8, "big")[:6] + guid).decode("ascii")


def make_message_id(ticket_number: int | None, domain: str) -> str:
    """`<mailgate.1042.<random>@domain>`: replies that lost the tag still find their ticket."""
    host = clean_header(domain).lower()
    if not is_plain_address(f"x@{host}"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    return f"<mailgate.{ticket_number or 0}.{secrets.token_hex(8)}@{host}>"


def ticket_number_from_message_id(message_id: str, domain: str) -> int | None:
    """The ticket number in a Message-ID made by make_message_id for this domain, else None."""
    match = _OUR_MSG_ID.match(message_id.strip().strip("<>"))
    if match is None or match.group(2).lower() != domain.strip().lower():
        return None
    return int(match.group(1)) or None


def clean_message_id(value: str) -> str | None:
    """One msg-id in angle brackets, or None when the value is not a usable one."""
    text = clean_header(value)
    if not text.startswith("<"):
        text = f"<{text}>"
    if len(text) > MAX_MSGID_LENGTH or not _MSG_ID.match(text):
        return None
    return text


def compose(out: Outgoing, now: datetime) -> bytes:
    """The message as it goes over the wire: CRLF line ends, 7-bit, ready for DATA."""
    if now.tzinfo is None:
        raise ValueError("compose needs an aware datetime for the Date header")
    msg = EmailMessage(policy=POLICY)
    msg["Date"] = format_datetime(now)
    _set_addresses(msg, out)
    msg["Subject"] = clean_header(out.subject)
    _set_threading(msg, out)
    if out.auto_submitted is not None:
        if out.auto_submitted not in AUTO_SUBMITTED:
            raise ValueError(f"not an Auto-Submitted value: {out.auto_submitted!r}")
        msg["Auto-Submitted"] = out.auto_submitted
        # Exchange and Outlook honour this one instead of Auto-Submitted.
        msg["X-Auto-Response-Suppress"] = "All"
    for name, value in out.extra_headers:
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"not an allowed extra header: {name!r}")
        msg[name] = clean_header(value)
    _set_body(msg, out)
    return msg.as_bytes()


def _set_addresses(msg: EmailMessage, out: Outgoing) -> None:
    if not out.to:
        raise InvalidAddress("a message needs at least one To address")
    # Address objects let the policy quote and RFC 2047-encode display names itself.
    msg["From"] = parse_address(out.from_addr)
    msg["To"] = tuple(parse_address(a) for a in out.to)
    if out.cc:
        msg["Cc"] = tuple(parse_address(a) for a in out.cc)
    if out.reply_to:
        msg["Reply-To"] = parse_address(out.reply_to)


def _set_threading(msg: EmailMessage, out: Outgoing) -> None:
    own = clean_message_id(out.message_id)
    if own is None:
        raise ValueError(f"not a Message-ID: {out.message_id!r}")
    # set_raw: the stdlib folder RFC 2047-encodes long ids, which breaks threading; ids are
    # ASCII already and _fold_ids keeps the lines short. Safe because every id passed
    # clean_message_id (no spaces, no control characters).
    msg.set_raw("Message-ID", own)
    reply_to_id = clean_message_id(out.in_reply_to) if out.in_reply_to else None
    if reply_to_id:
        msg.set_raw("In-Reply-To", reply_to_id)
    references = _capped(_unique_ids(out.references))
    if references:
        msg.set_raw("References", _fold_ids(references, len("References: ")))


def _unique_ids(values: Iterable[str]) -> list[str]:
    """Usable ids in order, once each. A value may be a whole References line: then only the
    bracketed ids in it count, not words between them."""
    found: dict[str, None] = {}
    for value in values:
        text = clean_header(value)
        for candidate in _BRACKETED.findall(text) if "<" in text else [text]:
            msg_id = clean_message_id(candidate)
            if msg_id:
                found[msg_id] = None
    return list(found)


def _capped(ids: list[str]) -> list[str]:
    """The thread's first id (its root) and the most recent ones, as RFC 5322 suggests."""
    if len(ids) <= MAX_REFERENCES:
        return ids
    return [ids[0], *ids[-(MAX_REFERENCES - 1) :]]


def _fold_ids(ids: list[str], used: int) -> str:
    """Ids joined by spaces, with a line break before an id that would pass LINE_WIDTH."""
    folded, width = ids[0], used + len(ids[0])
    for msg_id in ids[1:]:
        if width + 1 + len(msg_id) > LINE_WIDTH:
            folded, width = f"{folded}\n {msg_id}", 1 + len(msg_id)
        else:
            folded, width = f"{folded} {msg_id}", width + 1 + len(msg_id)
    return folded


def _set_body(msg: EmailMessage, out: Outgoing) -> None:
    attachments = [_attachment(*item) for item in out.attachments]
    if out.html is None and not attachments:
        msg.set_content(out.text, subtype="plain", charset="utf-8")
        return
    # Built from MIMEParts: EmailMessage.add_* would put a MIME-Version into every part.
    msg["MIME-Version"] = "1.0"
    if attachments:
        msg.make_mixed()
        msg.attach(_readable_part(out))
        for part in attachments:
            msg.attach(part)
    else:
        msg.make_alternative()
        for part in _alternatives(out):
            msg.attach(part)


def _text_part(content: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=POLICY)
    part.set_content(content, subtype=subtype, charset="utf-8")
    return part


def _alternatives(out: Outgoing) -> list[MIMEPart]:
    parts = [_text_part(out.text, "plain")]
    if out.html is not None:
        parts.append(_text_part(out.html, "html"))
    return parts


def _readable_part(out: Outgoing) -> MIMEPart:
    """The text, or text and html as multipart/alternative."""
    parts = _alternatives(out)
    if len(parts) == 1:
        return parts[0]
    alternative = MIMEPart(policy=POLICY)
    alternative.make_alternative()
    for part in parts:
        alternative.attach(part)
    return alternative


def _attachment(filename: str, content_type: str, data: bytes) -> MIMEPart:
    ctype = content_type.strip().lower()
    if not _MIME_TYPE.match(ctype) or ctype.startswith("multipart/"):
        ctype = "application/octet-stream"
    maintype, _, subtype = ctype.partition("/")
    part = MIMEPart(policy=POLICY)
    # Path separators too: a client saving the file must not be steered into another folder.
    name = clean_header(filename).replace("/", "_").replace("\\", "_") or "attachment"
    part.set_content(data, maintype, subtype, filename=name)
    return part
