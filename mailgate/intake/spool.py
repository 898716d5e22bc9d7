"""accept(): the only way mail enters. The raw bytes are committed before anyone says yes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from mailgate.models import Intake
from mailgate.store import Store


@dataclass(frozen=True)
class Accepted:
    intake_id: int
    duplicate: bool  # the very same bytes were stored before; nothing new was written


def content_digest(raw: bytes) -> str:
    """sha256 of the body: everything after the header block, with CRLF taken as LF."""
    normalised = raw.replace(b"\r\n", b"\n")
    _, sep, body = normalised.partition(b"\n\n")
    return hashlib.sha256(body.rstrip() if sep else b"").hexdigest()


def accept(
    store: Store,
    raw: bytes,
    source: str,
    now: datetime,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
) -> Accepted:
    """Store the raw message durably. Raises StoreUnavailable when the database cannot take it
    now: the caller answers 451 (SMTP), leaves it in the mailbox (IMAP) or exits 75 (pipe)."""
    digest = hashlib.sha256(raw).hexdigest()
    with store.session() as session:
        existing = session.exec(select(Intake.id).where(Intake.sha256 == digest)).first()
        if existing is not None:
            return Accepted(existing, duplicate=True)
        intake = Intake(
            received_at=now,
            source=source,
            envelope_from=envelope_from,
            envelope_to="\n".join(envelope_to),
            sha256=digest,
            size=len(raw),
            content_sha256=content_digest(raw),
            raw=raw,
        )
        session.add(intake)
        session.flush()
        return Accepted(intake.id or 0, duplicate=False)
