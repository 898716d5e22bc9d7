"""The same mail delivered twice: an earlier stored message with its Message-ID, body and
sender that already became a ticket or an article. Looked up once per batch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from mailgate.desk.customers import Sender, domain_of, remembered
from mailgate.reading.parse import ParsedMail
from mailgate.reading.verify import NOT_VERIFIED
from mailgate.store.models import DONE, Intake

# What the transaction knows of the stored messages of a Message-ID: id -> _Copy.
_SAME_MESSAGE_ID_KIND = "stored messages by Message-ID"


@dataclass(frozen=True)
class _Copy:
    """What the duplicate check compares of a stored message with a Message-ID."""

    status: str
    digest: str  # of the body (Intake.content_sha256)
    from_addr: str
    envelope_from: str
    reason: str  # a done message's names a warning (verify.NOT_VERIFIED)

    @property
    def unverified(self) -> bool:
        return NOT_VERIFIED in self.reason


def find_duplicate(
    session: Session, mail: ParsedMail, intake: Intake, sender: Sender
) -> int | None:
    """An earlier message with the same Message-ID, the same body and the same sender that
    already became a ticket or an article: this one is the same mail delivered again.
    Anyone can copy a Message-ID and a text; only the sender's own copy can pre-empt it, and
    a copy our MTA marked forged pre-empts none that it did not."""
    if not mail.message_id:
        return None
    look_up_message_ids(session, [mail.message_id])
    known = remembered(session, _SAME_MESSAGE_ID_KIND)
    this = _Copy(DONE, intake.content_sha256, mail.from_addr, intake.envelope_from, "")
    for other_id, other in known[mail.message_id].items():
        if other_id == intake.id or other.status != DONE or not _same_mail(other, this):
            continue
        if other.unverified == bool(sender.unverified):
            return other_id
    return None


def _same_mail(earlier: _Copy, this: _Copy) -> bool:
    """Same body, same From, and where both came with an envelope sender, one of the same
    domain: a sender's relays may tag its local part per delivery (VERP, BATV)."""
    if earlier.digest != this.digest or earlier.from_addr != this.from_addr:
        return False
    if not (earlier.envelope_from and this.envelope_from):
        return True
    return domain_of(earlier.envelope_from) == domain_of(this.envelope_from)


def look_up_message_ids(session: Session, message_ids: Iterable[str]) -> None:
    """Read the stored messages with any of these Message-IDs (a batch's) with one query,
    for find_duplicate; note_outcome keeps what it read up to date."""
    known = remembered(session, _SAME_MESSAGE_ID_KIND)
    wanted = {message_id for message_id in message_ids if message_id} - known.keys()
    if not wanted:
        return
    # Only the Message-ID in the WHERE clause, so the database walks that index and never
    # the status index (nearly every row is `done`); the rest is checked on the few rows.
    # The sender's columns are not in that index: only a Message-ID seen before (rare) costs
    # a read of its rows, a new one finds nothing in the index alone.
    query = select(
        Intake.id,
        Intake.message_id,
        Intake.status,
        Intake.content_sha256,
        Intake.from_addr,
        Intake.envelope_from,
        Intake.reason,
    )
    found: dict[str, dict[int, _Copy]] = {message_id: {} for message_id in wanted}
    for row_id, message_id, *copy in session.exec(query.where(col(Intake.message_id).in_(wanted))):
        found[message_id][row_id or 0] = _Copy(*copy)
    known.update(found)


def note_outcome(session: Session, intake: Intake) -> None:
    """A message's outcome, written in this transaction, for find_duplicate's look-ups."""
    rows = remembered(session, _SAME_MESSAGE_ID_KIND).get(intake.message_id)
    if rows is not None:
        rows[intake.id or 0] = _Copy(
            intake.status,
            intake.content_sha256,
            intake.from_addr,
            intake.envelope_from,
            intake.reason,
        )
