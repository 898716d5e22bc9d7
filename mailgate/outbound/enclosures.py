"""Which stored files of an article travel with an outgoing mail, within the sizes it must keep."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from mailgate.store import blobs
from mailgate.store.models import Attachment

log = logging.getLogger("mailgate.notify")

TOO_LARGE = "too_large"
UNREADABLE = "unreadable"
# What a file part costs beyond its base64 lines: its headers with a long encoded name.
PART_HEADERS = 1024
# What a mail costs besides its files: headers, the template around the text, boundaries.
MAIL_FRAME = 16 * 1024


@dataclass(frozen=True)
class Enclosure:
    """A file as it goes out: an attachment, or an inline image when it has a content id."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class Listed:
    """A file of the article, and whether it goes along (reason is "" when it does)."""

    filename: str
    size: int
    reason: str = ""

    def view(self) -> dict[str, object]:
        attached = not self.reason
        return {"filename": self.filename, "size": self.size, "attached": attached}


@dataclass(frozen=True)
class Chosen:
    files: tuple[Enclosure, ...] = ()
    listed: tuple[Listed, ...] = ()

    @property
    def left_out(self) -> tuple[Listed, ...]:
        return tuple(item for item in self.listed if item.reason)


def wire_size(size: int) -> int:
    """A file's size in a mail: base64 in lines of 76 characters and CRLF, with its headers."""
    lines = -(-size // 57)
    return -(-size // 3) * 4 + 2 * lines + PART_HEADERS


def text_allowance(*texts: str | None) -> int:
    """What a mail's readable parts may cost at most: quoted-printable writes a byte in up to
    three characters, and the text goes out twice (plain and HTML)."""
    return MAIL_FRAME + sum(3 * len(t.encode("utf-8")) for t in texts if t)


def choose(
    session: Session,
    data_dir: Path,
    attachments: list[Attachment],
    wire_budget: int,
    raw_budget: int | None = None,
) -> Chosen:
    """The files that fit the budgets together, in order: a big one is left out, smaller ones
    after it may still fit. `wire_budget` counts the encoded size (what a relay limits),
    `raw_budget` the files' own size (what a desk chose to receive)."""
    files: list[Enclosure] = []
    listed: list[Listed] = []
    for item in attachments:
        fits = wire_size(item.size) <= wire_budget
        fits = fits and (raw_budget is None or item.size <= raw_budget)
        data = _content(session, data_dir, item.sha256) if fits else None
        reason = "" if data is not None else (UNREADABLE if fits else TOO_LARGE)
        listed.append(Listed(item.filename, item.size, reason))
        if data is None:
            continue
        files.append(Enclosure(item.filename, item.content_type, data, _shown_inline(item)))
        wire_budget -= wire_size(item.size)
        raw_budget = None if raw_budget is None else raw_budget - item.size
    return Chosen(tuple(files), tuple(listed))


def _shown_inline(item: Attachment) -> str | None:
    """The content id of an image shown in the HTML; any other part goes as an attachment."""
    image = item.content_type.lower().startswith("image/")
    return item.content_id if item.inline and image and item.content_id else None


def article_files(session: Session, article_id: int) -> list[Attachment]:
    query = select(Attachment).where(Attachment.article_id == article_id)
    return list(session.exec(query.order_by(col(Attachment.id))))


def _content(session: Session, data_dir: Path, sha256: str) -> bytes | None:
    try:
        return blobs.read_in(session, data_dir, sha256)
    except OSError as exc:
        # A lost file must not hold up the mail: it is listed, not attached.
        log.warning("event=blob_unreadable sha256=%s error=%r", sha256, str(exc))
        return None
