"""The ticket tag `[CID-1042]`: find it in a subject, format it, put it in exactly once."""

from __future__ import annotations

import re
from functools import lru_cache

# Reply and forward prefixes of the common mail clients, in several languages; only needed to
# tidy an outgoing subject, since the tag is found wherever it stands.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|wg|sv|vs|fw|fwd|tr|antw|rif|ref|r)(?:\[\d+\]|\(\d+\))?\s*:\s*)+",
    re.IGNORECASE,
)


@lru_cache(maxsize=16)
def _tag_pattern(prefix: str) -> re.Pattern[str]:
    # Any case, and the blanks some clients put inside brackets ("[ CID - 1042 ]").
    return re.compile(rf"\[\s*{re.escape(prefix)}\s*-\s*(\d{{1,12}})\s*\]", re.IGNORECASE)


def format_tag(prefix: str, number: int) -> str:
    return f"[{prefix}-{number}]"


def cid(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def find_number(subject: str, prefix: str) -> int | None:
    """The ticket number of the first tag in the subject, or None."""
    match = _tag_pattern(prefix).search(subject or "")
    return int(match.group(1)) if match else None


def strip_tags(subject: str, prefix: str) -> str:
    without = _tag_pattern(prefix).sub(" ", subject or "")
    return " ".join(without.split())


def strip_reply_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject or "").strip()


def tagged_subject(subject: str, prefix: str, number: int) -> str:
    """`[CID-n] subject` with any other tag of ours and leading reply prefixes removed."""
    core = strip_reply_prefixes(strip_tags(subject, prefix))
    tag = format_tag(prefix, number)
    return f"{tag} {core}" if core else tag
