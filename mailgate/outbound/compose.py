"""Outgoing message bytes: headers sanitised and addresses checked, MIME built by the stdlib."""

from __future__ import annotations

import base64
import binascii
import functools
import re
import secrets
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import encode_rfc2231, format_datetime, formataddr, getaddresses, parseaddr

from mailgate.reading import marks

# Outgoing mail has CRLF line ends as SMTP wants them, and 7-bit transfer encodings so that
# any relay, with or without 8BITMIME, passes the message on unchanged.
LINE_WIDTH = 78
MAX_WORD = 900  # longer words and mailboxes would not fit a line of 998 octets with its name
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
    # Images the HTML shows by `cid:`: (filename, content type, data, content id).
    inline: tuple[tuple[str, str, bytes, str], ...] = ()
    # The envelope's recipients when they are not To and Cc: one copy of a mail for each
    # customer, each with a sign-in link of their own, shows all of them in its header.
    envelope: tuple[str, ...] = ()


def clean_header(value: str) -> str:
    """The one gate for header text: control characters and line breaks become spaces, runs of
    whitespace one space, so no value can end its header line and start another."""
    spaced = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in value)
    return " ".join(spaced.split())


def is_plain_address(addr: str) -> bool:
    """A bare ASCII `local@domain`, nothing a mail or SMTP command could be smuggled in."""
    return bool(_ADDR_SPEC.match(addr))


def is_utf8_address(addr: str) -> bool:
    """`local@domain` with UTF-8 letters in the local part (RFC 6531) and an ASCII domain:
    it goes out only over SMTPUTF8. Otherwise as strict as is_plain_address."""
    local, at, domain = addr.rpartition("@")
    if not at or local.isascii():
        return False
    # No control, format, space or separator characters: nothing that could end a line.
    if any(unicodedata.category(ch)[0] in "CZ" for ch in local):
        return False
    return is_plain_address("".join(ch if ch.isascii() else "x" for ch in local) + "@" + domain)


def is_sendable_address(addr: str) -> bool:
    return is_plain_address(addr) or is_utf8_address(addr)


def address_domain(addr: str) -> str:
    """The domain of an address (with or without a display name), lower case; "" if none."""
    local, at, domain = parseaddr(addr)[1].rpartition("@")
    return domain.lower() if local and at else ""


# Remembered: every mail names the support address twice (From, Reply-To), and each of its
# recipients is read by compose and again by the outbox. The answer depends on the value alone.
@functools.lru_cache(maxsize=4096)
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
    if not is_sendable_address(f"{local}@{domain}"):
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


def make_message_id(ticket_number: int | None, domain: str, key: bytes) -> str:
    """`<mailgate.1042.<random>.<mark>@domain>`: replies that lost the tag still find their
    ticket, and the keyed mark tells our own mail from any that merely looks like it."""
    host = clean_header(domain).lower()
    if not is_plain_address(f"x@{host}"):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    return marks.message_id(ticket_number or 0, host, key)


def clean_message_id(value: str) -> str | None:
    """One msg-id in angle brackets, or None when the value is not a usable one."""
    text = clean_header(value)
    if not text.startswith("<"):
        text = f"<{text}>"
    if len(text) > MAX_MSGID_LENGTH or not _MSG_ID.match(text):
        return None
    return text


def compose(out: Outgoing, now: datetime) -> bytes:
    """The message as it goes over the wire: CRLF line ends, 7-bit, ready for DATA. (Only
    an address with UTF-8 in its local part is written as UTF-8: it needs SMTPUTF8 anyway.)

    Written out directly rather than through email.message: the stdlib's header registry
    and generator cost some 5 ms a message, which every acknowledgement paid. Every value
    still passes the same gates (clean_header, parse_address, clean_message_id)."""
    if now.tzinfo is None:
        raise ValueError("compose needs an aware datetime for the Date header")
    lines = [f"Date: {format_datetime(now)}", *_address_lines(out)]
    lines.append(_text_header("Subject", clean_header(out.subject)))
    lines += _threading_lines(out)
    if out.auto_submitted is not None:
        if out.auto_submitted not in AUTO_SUBMITTED:
            raise ValueError(f"not an Auto-Submitted value: {out.auto_submitted!r}")
        lines.append(f"Auto-Submitted: {out.auto_submitted}")
        # Exchange and Outlook honour this one instead of Auto-Submitted.
        lines.append("X-Auto-Response-Suppress: All")
    for name, value in out.extra_headers:
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"not an allowed extra header: {name!r}")
        lines.append(_text_header(name, clean_header(value)))
    lines.append("MIME-Version: 1.0")
    return "\r\n".join(lines).encode("utf-8") + b"\r\n" + _body(out)


def _fold(name: str, words: list[str], separator: str = " ") -> str:
    """`Name: w1 w2 ...`, with a line break before a word that would pass LINE_WIDTH."""
    line, width = f"{name}: {words[0]}", len(name) + 2 + len(words[0])
    for word in words[1:]:
        if width + len(separator) + len(word) > LINE_WIDTH:
            line, width = f"{line}{separator.rstrip()}\r\n {word}", 1 + len(word)
        else:
            line, width = f"{line}{separator}{word}", width + len(separator) + len(word)
    return line


def _text_header(name: str, value: str) -> str:
    """Unstructured text (a subject): folded at spaces when ASCII, RFC 2047 otherwise."""
    words = value.split(" ")
    # A word too long for any line goes the encoded way, which splits it.
    if value.isascii() and max(map(len, words)) < MAX_WORD:
        return _fold(name, words) if value else f"{name}: "
    return _encoded_header(name, value)


ENCODED_WORD_MAX = 75  # RFC 2047's limit on one encoded word
_ENCODED_WORD_FRAME = len("=?utf-8?b??=")


def _encoded_header(name: str, value: str) -> str:
    """RFC 2047 encoded words (UTF-8, base64), one to a line, each a run of whole
    characters. Written here: the stdlib's Header searches for each line's split by
    encoding every candidate again, which cost most of an acknowledgement's composing."""
    words, chunk = [], b""
    room = _word_bytes(LINE_WIDTH - len(name) - 2)
    for character in value:
        encoded = character.encode("utf-8")
        if chunk and len(chunk) + len(encoded) > room:
            words.append(chunk)
            chunk, room = b"", _word_bytes(LINE_WIDTH - 1)
        chunk += encoded
    words.append(chunk)
    lines = [f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words]
    return f"{name}: " + "\r\n ".join(lines)


def _word_bytes(columns: int) -> int:
    """How many bytes of text an encoded word of at most `columns` columns carries."""
    width = min(columns, ENCODED_WORD_MAX) - _ENCODED_WORD_FRAME
    return max(width // 4 * 3, 6)


def _mailbox(address: Address) -> str:
    if address.addr_spec.isascii():
        # formataddr quotes an ASCII name where needed and RFC 2047-encodes any other.
        written = formataddr((address.display_name, address.addr_spec), charset="utf-8")
    else:
        # A UTF-8 address goes out in a UTF-8 header (RFC 6532), name and all, quoted.
        written = str(address)
    # A name too long for one line (998 octets) is left out rather than folded mid-word.
    return written if len(written) < MAX_WORD else address.addr_spec


def _address_lines(out: Outgoing) -> list[str]:
    if not out.to:
        raise InvalidAddress("a message needs at least one To address")
    lines = [f"From: {_mailbox(parse_address(out.from_addr))}"]
    lines.append(_fold("To", [_mailbox(parse_address(a)) for a in out.to], ", "))
    if out.cc:
        lines.append(_fold("Cc", [_mailbox(parse_address(a)) for a in out.cc], ", "))
    if out.reply_to:
        lines.append(f"Reply-To: {_mailbox(parse_address(out.reply_to))}")
    return lines


def _threading_lines(out: Outgoing) -> list[str]:
    # Ids are written as they are: an encoder would RFC 2047-encode long ones, which breaks
    # threading. Safe because every id passed clean_message_id (no spaces, no controls).
    own = clean_message_id(out.message_id)
    if own is None:
        raise ValueError(f"not a Message-ID: {out.message_id!r}")
    lines = [f"Message-ID: {own}"]
    reply_to_id = clean_message_id(out.in_reply_to) if out.in_reply_to else None
    if reply_to_id:
        lines.append(f"In-Reply-To: {reply_to_id}")
    references = _capped(_unique_ids(out.references))
    if references:
        lines.append(_fold("References", references))
    return lines


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


# Bodies -------------------------------------------------------------------------------------


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def _text_part(content: str, subtype: str) -> bytes:
    """A UTF-8 text part in quoted-printable: 7-bit, and still readable where it is ASCII."""
    lines = content.replace("\r\n", "\n").replace("\r", "\n")
    if not lines.endswith("\n"):
        lines += "\n"  # the part's last line ends like the others
    encoded = binascii.b2a_qp(lines.encode("utf-8"), istext=True)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + _crlf(encoded)


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    boundary = f"=_mailgate_{secrets.token_hex(12)}"
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
    body = b"".join(f"--{boundary}\r\n".encode("ascii") + part + b"\r\n" for part in parts)
    return head.encode("ascii") + body + f"--{boundary}--\r\n".encode("ascii")


def _readable(out: Outgoing) -> bytes:
    """The text, or text and html as multipart/alternative."""
    if out.html is None:
        return _text_part(out.text, "plain")
    return _multipart("alternative", [_text_part(out.text, "plain"), _text_part(out.html, "html")])


def _filename_params(name: str) -> str:
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'filename="{quoted}"'
    return f"filename*={encode_rfc2231(name, 'utf-8')}"


def _attachment(filename: str, content_type: str, data: bytes, content_id: str = "") -> bytes:
    ctype = content_type.strip().lower()
    # A multipart or message part (a forwarded mail) may not be base64-encoded (RFC 2046):
    # it goes as a plain file, its name (.eml) telling the client what it is.
    if not _MIME_TYPE.match(ctype) or ctype.startswith(("multipart/", "message/")):
        ctype = "application/octet-stream"
    # Path separators too: a client saving the file must not be steered into another folder.
    name = clean_header(filename).replace("/", "_").replace("\\", "_") or "attachment"
    params = _filename_params(name)
    cid = clean_message_id(content_id) if content_id else None
    disposition = "inline" if cid else "attachment"
    head = (
        f"Content-Type: {ctype}; {params.replace('filename', 'name', 1)}\r\n"
        f"Content-Transfer-Encoding: base64\r\n"
        + (f"Content-ID: {cid}\r\n" if cid else "")
        + f"Content-Disposition: {disposition}; {params}\r\n\r\n"
    )
    return head.encode("ascii") + _crlf(base64.encodebytes(data))


def _shown(out: Outgoing) -> bytes:
    """The readable parts, with the images their HTML shows as multipart/related."""
    readable = _readable(out)
    if not out.inline or out.html is None:
        return readable
    return _multipart("related", [readable, *(_attachment(*item) for item in out.inline)])


def _body(out: Outgoing) -> bytes:
    # Inline images without HTML to show them in go as plain attachments.
    files = [*out.attachments, *(item[:3] for item in out.inline if out.html is None)]
    if not files:
        return _shown(out)
    return _multipart("mixed", [_shown(out), *(_attachment(*item) for item in files)])
