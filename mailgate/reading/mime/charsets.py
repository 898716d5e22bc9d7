"""Bytes to text: charset aliases, the decoding fallback chain, detection and hints."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

import charset_normalizer

# Labels that promise nothing about the bytes: treat the text as undeclared.
_UNDECLARED = frozenset(
    {"", "x-unknown", "unknown-8bit", "unknown", "none", "default", "x-user-defined", "8bit"}
)
_ISO2022_JP = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3")
# Mail clients label text with names Python lacks, or with a subset of what they really sent
# (Outlook's "iso-8859-1" is cp1252, "shift_jis" is cp932, "gb2312" is GBK): decode with the
# superset, which is what the sender's machine used.
_ALIASES: dict[str, tuple[str, ...]] = {
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601-1989": ("cp949",),
    "ks_c_5601": ("cp949",),
    "ksc5601": ("cp949",),
    "euc-kr": ("cp949",),
    "x-windows-949": ("cp949",),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "euc-cn": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "x-x-big5": ("cp950", "big5hkscs"),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932",),
    "x-sjis": ("cp932",),
    "windows-31j": ("cp932",),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "iso-2022-jp": _ISO2022_JP,
    "iso-2022-jp-1": _ISO2022_JP,
    "iso-2022-jp-2": ("iso2022_jp_2", *_ISO2022_JP),
    "iso-2022-jp-3": ("iso2022_jp_3", *_ISO2022_JP),
    "iso-2022-jp-2004": ("iso2022_jp_2004", *_ISO2022_JP),
    "csiso2022jp": _ISO2022_JP,
    "iso-8859-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "latin-1": ("cp1252", "latin-1"),
    "iso8859-1": ("cp1252", "latin-1"),
    "iso_8859-1": ("cp1252", "latin-1"),
    "us-ascii": ("ascii",),
    "iso-8859-8-i": ("iso8859_8",),
    "windows-874": ("cp874",),
    "utf8": ("utf-8",),
}
# Codecs whose ASCII-only input still needs the codec (escape sequences, shifted bytes).
_ASCII_UNSAFE = re.compile(r"utf[-_]?(7|16|32)|2022|hz", re.IGNORECASE)
# A small set keeps charset-normalizer from picking exotic code pages for short text.
_DETECT_SET = [
    "cp1252", "cp1250", "cp1251", "koi8_r", "koi8_u", "iso8859_2", "iso8859_15", "cp932",
    "euc_jp", "gb18030", "big5", "cp949", "cp1253", "cp1254", "cp1257", "cp1255", "cp1256",
    "cp874", "iso8859_5", "iso8859_7",
]  # fmt: skip
_DETECT_RANK = {name: rank for rank, name in enumerate(_DETECT_SET)}
_LATIN_PERMISSIVE = frozenset({"cp1252", "iso8859-1", "iso8859-15"})


@dataclass(frozen=True)
class Decoded:
    """Text plus how it was obtained."""

    text: str
    charset: str  # Python codec name actually used
    fallback: bool  # True when the declared charset was absent or wrong and non-ASCII was seen


def _clean_label(label: str) -> str:
    label = label.strip().strip("\"'").lower()
    return re.sub(r"[^a-z0-9_.:-]", "", label.split("*", 1)[0])


@lru_cache(maxsize=256)
def charset_candidates(label: str | None) -> tuple[str, ...]:
    """Codecs to try for a declared charset label; () when undeclared or unknown."""
    if not label:
        return ()
    name = _clean_label(label)
    if name in _UNDECLARED:
        return ()
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        info = codecs.lookup(name)
    except LookupError:
        return ()
    # codecs.lookup also finds bytes-to-bytes codecs (base64, zlib): never text.
    if not getattr(info, "_is_text_encoding", True):
        return ()
    return (info.name,)


def codec_label(codec: str) -> str:
    """Canonical spelling of a codec for defect notes, e.g. koi8_r -> koi8-r."""
    try:
        return codecs.lookup(codec).name
    except LookupError:
        return codec


def _try(data: bytes, codec: str) -> str | None:
    try:
        text = data.decode(codec)
    except (UnicodeError, LookupError):
        return None
    if codec.startswith("utf") and codec not in ("utf-8", "utf_8"):
        try:  # UTF-16/7 can yield lone surrogates, which nothing downstream can store.
            text.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return text


def _looks_utf8(data: bytes) -> str | None:
    """Valid UTF-8 with multi-byte sequences is almost never Latin-1 by chance."""
    text = _try(data, "utf-8")
    return text if text is not None and not data.isascii() else None


def _detect(data: bytes) -> str | None:
    try:
        results = charset_normalizer.from_bytes(data, cp_isolation=_DETECT_SET)
    except Exception:  # a detector bug must not cost us the message
        return None
    best = results.best()
    if best is None:
        return None
    # Short text often ties between code pages; prefer the ones mail actually uses. A match
    # also lists the code pages that gave identical text (could_be_from_charset).
    tied = [
        name
        for r in results
        if r.chaos <= best.chaos + 0.02 and r.coherence >= best.coherence - 0.05
        for name in [r.encoding, *r.could_be_from_charset]
    ]
    return min(tied, key=lambda name: _DETECT_RANK.get(name, 99))


def decode_bytes(data: bytes, declared: str | None = None, hint: str | None = None) -> Decoded:
    """Decode with the declared charset, else utf-8, hint, detection, cp1252, latin-1."""
    wanted = charset_candidates(declared)
    if data.isascii() and not (wanted and _ASCII_UNSAFE.search(wanted[0])) and b"\x1b" not in data:
        return Decoded(data.decode("ascii"), "ascii", False)
    for codec in wanted:
        text = _try(data, codec)
        if text is not None:
            if codec_label(codec) in _LATIN_PERMISSIVE and (utf := _looks_utf8(data)):
                return Decoded(utf, "utf-8", True)
            return Decoded(text, codec, False)
    return _fallback(data, hint, declared=bool(wanted))


def _fallback(data: bytes, hint: str | None, declared: bool) -> Decoded:
    chain: list[str] = []
    if b"\x1b" in data:  # undeclared ISO-2022-JP is all 7-bit and would pass as ASCII/UTF-8
        chain.extend(_ISO2022_JP)
    chain.append("utf-8")
    chain.extend(charset_candidates(hint))
    for codec in chain:
        text = _try(data, codec)
        if text is not None:
            return Decoded(text, codec, declared or codec != "utf-8")
    detected = _detect(data)
    if detected and (text := _try(data, detected)) is not None:
        return Decoded(text, detected, True)
    text = _try(data, "cp1252")
    if text is not None:
        return Decoded(text, "cp1252", True)
    return Decoded(data.decode("latin-1"), "latin-1", True)


_DECLARED = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)|=\?([^?\s]+)\?[bBqQ]\?""", re.I)
_HINT_SCAN_LIMIT = 256 * 1024
_NO_HINT = frozenset({"ascii", "utf-8"})


def charset_hint(raw: bytes) -> str | None:
    """First legacy charset declared anywhere in a message (part headers, encoded words).

    Raw 8-bit headers and undeclared parts were almost always written by the same program
    in the same charset as the declared parts.
    """
    for match in _DECLARED.finditer(raw, 0, _HINT_SCAN_LIMIT):
        label = (match.group(1) or match.group(2)).decode("latin-1")
        codec = next(iter(charset_candidates(label)), "ascii")
        # UTF-16 or ISO-2022 would "decode" unrelated 8-bit bytes into nonsense.
        if codec_label(codec) not in _NO_HINT and not _ASCII_UNSAFE.search(codec):
            return label
    return None
