"""Attachment file names: turn a decoded, sender-chosen name into one safe to show and store."""

from __future__ import annotations

import mimetypes
import os
import re
import unicodedata

MAX_NAME_LENGTH = 200
# Longer "extensions" are part of the name, not a type marker worth preserving.
_MAX_EXTENSION = 16
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
# Characters Windows refuses in names (":" would open an alternate data stream).
_FORBIDDEN = re.compile(r'[<>:"|?*]')
# Bidi overrides/isolates let "gpj.exe" display as "exe.jpg".
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# A private table: the global one reads /etc/mime.types, so guesses would differ by machine.
_TYPES = mimetypes.MimeTypes(filenames=())
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
    "text/rfc822-headers": ".txt",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "text/calendar": ".ics",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "image/jpg": ".jpg",
    "application/pkcs7-signature": ".p7s",
    "application/pgp-signature": ".asc",
}


def guess_extension(content_type: str) -> str:
    """Extension for a MIME type, "" when unknown."""
    return _EXTENSIONS.get(content_type) or _TYPES.guess_extension(content_type) or ""


def _visible(name: str) -> str:
    return "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cs") and ch not in _BIDI_CONTROLS
    )


def _cap(name: str) -> str:
    if len(name) <= MAX_NAME_LENGTH:
        return name
    root, ext = os.path.splitext(name)
    if len(ext) > _MAX_EXTENSION:
        root, ext = name, ""
    return root[: MAX_NAME_LENGTH - len(ext)].rstrip(" .") + ext


def _unreserve(name: str) -> str:
    stem = name.split(".", 1)[0].rstrip(" ").upper()
    return "_" + name if stem in _RESERVED else name


def safe_filename(name: str | None, content_type: str, index: int) -> str:
    """Basename without path, control or bidi characters, leading dots or reserved names.

    index numbers the fallback name ("attachment-3.pdf") when nothing usable is left.
    """
    # NFC: macOS sends decomposed names; one spelling per name keeps lookups and dedup sane.
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _FORBIDDEN.sub("_", _visible(base)).strip().lstrip(".").rstrip(" .").strip()
    if not base:
        base = f"attachment-{index}{guess_extension(content_type)}"
    return _cap(_unreserve(base))


def guess_type(name: str) -> str:
    """MIME type for a file name (uuencoded or TNEF files carry no Content-Type)."""
    return _TYPES.guess_type(name, strict=False)[0] or "application/octet-stream"
