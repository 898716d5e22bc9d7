"""MIME leaf access: transfer-decoded payloads, charsets, parameters and the walk's record."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import Compat32
from typing import NamedTuple

from mailgate.reading.mime.charsets import codec_label, decode_bytes
from mailgate.reading.mime.headers import b64decode_lenient, decode_header

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_MESSAGE_ID = re.compile(r"<([^<>]*)>")
_PARAM_HEADERS = frozenset({"content-type", "content-disposition", "content-location"})


class _Verbatim(Compat32):
    """Writes headers as received instead of refolding them: faithful, and much faster."""

    def fold_binary(self, name: str, value: object) -> bytes:
        folded = str(value).replace("\r\n", self.linesep)  # bodies are written with linesep too
        return f"{name}: {folded}{self.linesep}".encode("utf-8", "surrogateescape")


VERBATIM = _Verbatim()


class Attachment(NamedTuple):
    """Same fields, in the same order, as parse.MailPart."""

    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass
class Walked:
    """Everything the walk found."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    tnef_text: str | None = None
    tnef_html: str | None = None
    report_type: str | None = None
    report_ids: list[str] = field(default_factory=list)
    report_failed: list[str] = field(default_factory=list)
    report_diagnostics: list[str] = field(default_factory=list)  # what failed them, each once
    visited: int = 0  # parts seen so far, for the part-count limit

    def add(self, *defects: str) -> None:
        self.defects.extend(d for d in defects if d not in self.defects)

    def absorb(self, other: Walked) -> None:
        """Take over everything but the bodies from a sub-walk."""
        self.attachments.extend(other.attachments)
        self.add(*other.defects)
        self.tnef_text = self.tnef_text or other.tnef_text
        self.tnef_html = self.tnef_html or other.tnef_html
        self.report_type = self.report_type or other.report_type
        self.report_ids.extend(i for i in other.report_ids if i not in self.report_ids)
        self.report_failed.extend(a for a in other.report_failed if a not in self.report_failed)
        said = self.report_diagnostics
        said.extend(d for d in other.report_diagnostics if d not in said)


def raw_bytes(value: str) -> bytes:
    """Original bytes of a value the bytes parser stored as surrogate-escaped ASCII."""
    return value.encode("utf-8", "surrogateescape")


def decoded(value: object, hint: str | None = None) -> str:
    """A raw header value as one line of text."""
    return decode_header(raw_bytes(str(value)), hint)[0]


def header_text(part: Message, name: str, hint: str | None = None) -> str:
    value = part.get(name)
    return decoded(value, hint) if value is not None else ""


def transfer_encoding(part: Message) -> str:
    value = str(part.get("content-transfer-encoding", "")).strip().lower()
    # "quoted-printable;" and "base64 " are seen in the wild; the stdlib would skip decoding.
    return re.split(r"[\s;]", value, maxsplit=1)[0]


# The attribute on a parsed part that holds its body, decoded before parsing (mime/aside.py).
SET_ASIDE = "_mailgate_set_aside"


def payload_bytes(part: Message, walked: Walked) -> bytes:
    """Transfer-decoded payload of a leaf part, from the original bytes."""
    if part.is_multipart():
        return b""
    set_aside: bytes | None = getattr(part, SET_ASIDE, None)
    if set_aside is not None:
        return set_aside
    cte = transfer_encoding(part)
    # The stored payload itself: get_payload() would re-decode 8-bit text by its charset.
    raw_payload = part._payload
    if cte == "base64" and isinstance(raw_payload, str):
        # Decoded here rather than by get_payload(decode=True), which splits the payload
        # into lines, joins and pads it: four copies of a large attachment at once.
        data, well_formed = b64decode_lenient(raw_payload.encode("ascii", "surrogateescape"))
        if not well_formed:
            walked.add("bad-base64")
        return data
    # decode=True gives the original bytes, decoded when the stdlib knows the transfer
    # encoding by its exact spelling (decode=False would re-decode 8-bit text lossily, and
    # trips over RFC 2231 charset parameters).
    data = part.get_payload(decode=True)
    data = data if isinstance(data, bytes) else b""
    if cte == "quoted-printable" and cte != str(part.get("content-transfer-encoding", "")).lower():
        # "quoted-printable;": the stdlib left the bytes encoded.
        data = binascii.a2b_qp(data)
    return data


def children(part: Message) -> list[Message]:
    """Sub-parts of a multipart or message/* part (never the lossy str payload view)."""
    payload = part.get_payload() if part.is_multipart() else []
    return [child for child in payload if isinstance(child, Message)]


def _declared_charset(part: Message, data: bytes, is_html: bool) -> str | None:
    charset = part.get_param("charset")
    if isinstance(charset, tuple):  # RFC 2231 form
        charset = charset[2]
    if not charset and is_html and (meta := _META_CHARSET.search(data[:4096])):
        return meta.group(1).decode("ascii")
    return str(charset) if charset else None


def part_text(part: Message, walked: Walked, hint: str | None) -> str:
    """Decoded text of a text/* leaf, newlines normalised, NULs dropped."""
    data = payload_bytes(part, walked)
    view = param_view(part, hint)
    declared = _declared_charset(view, data, part.get_content_subtype() == "html")
    result = decode_bytes(data, declared, hint)
    if result.fallback:
        walked.add(f"charset-fallback:{codec_label(result.charset)}")
    text = result.text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        walked.add("nul-bytes-removed")
        text = text.replace("\x00", "")
    return text


def param_view(part: Message, hint: str | None) -> Message:
    """The part, or a header-only copy whose parameters are readable.

    compat32 turns raw 8-bit header bytes into U+FFFD when asked for parameters, so such
    Content-Type/Content-Disposition values are decoded first (e.g. raw UTF-8 file names).
    """
    raw = [(n, str(v)) for n, v in part.raw_items() if n.lower() in _PARAM_HEADERS]
    if all(value.isascii() for _, value in raw):
        return part
    view = Message()
    for name, value in raw:
        view[name] = decode_bytes(raw_bytes(value), None, hint).text
    return view


def _rfc2231_bytes(text: str) -> bytes:
    try:  # the stdlib %-decodes to latin-1 text, i.e. one char per original byte
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:  # raw non-ASCII that was never %-encoded
        return text.encode("utf-8", "surrogateescape")


def filename(part: Message, hint: str | None) -> str | None:
    """Declared file name, RFC 2231 and RFC 2047 decoded, not yet made safe."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = part.get_param(param, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text)
            return decode_bytes(_rfc2231_bytes(value[2]), value[0] or None, hint).text
        if value:
            return decoded(value, hint)
    # Some clients name inline parts only by Content-Location (a path or URL).
    location = header_text(part, "content-location", hint).split("?", 1)[0]
    return location or None


def content_id(part: Message) -> str | None:
    """Content-ID without angle brackets."""
    value = part.get("content-id")
    if value is None:
        return None
    cid = decoded(value).strip("<> ")
    return cid or None


def message_ids(value: str) -> list[str]:
    """Message ids without angle brackets, in order; a bare id is accepted when alone."""
    found = [re.sub(r"\s+", "", m) for m in _MESSAGE_ID.findall(value)]
    if not found and (bare := value.strip()) and " " not in bare:
        found = [bare]
    return list(dict.fromkeys(m for m in found if m))


def append(
    walked: Walked,
    name: str | None,
    content_type: str,
    data: bytes,
    cid: str | None = None,
    inline: bool = False,
) -> None:
    """Record a file; its name is made safe once the walk is over, so fallback numbers
    ("attachment-3") count across the whole mail."""
    walked.attachments.append(Attachment(name or "", content_type, data, cid, inline))


def blocks_bytes(blocks: list[Message]) -> bytes:
    """The field groups of a message/* part (parsed as headers by the stdlib) as bytes."""
    try:
        return b"".join(block.as_bytes(policy=VERBATIM) for block in blocks)
    except Exception:  # the generator can trip over what the parser accepted
        return b""
