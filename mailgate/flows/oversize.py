"""Mail too large to take: only its header was stored, and its sender is told once."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from mailgate.desk.customers import identify
from mailgate.outbound import notify
from mailgate.outbound.context import Context
from mailgate.reading.language import mail_language
from mailgate.reading.parse import ParsedMail
from mailgate.reading.screen import ignored_sender, screen
from mailgate.reading.verify import verify_customer
from mailgate.store.models import Intake
from mailgate.store.spool import stored_raw, stored_sizes


def withheld_among(session: Session, intakes: Iterable[Intake]) -> set[int]:
    """Those of the stored messages of which only the header was stored: the IMAP intake and
    `mailgate ingest` do so for a message over the size limit, recording the size of the
    whole one. One look-up for a batch: a query each cost as much as storing a mail's rows."""
    # SMTP refuses such a message before it is stored: its messages need no look.
    partial = {
        intake.id or 0: intake.size
        for intake in intakes
        if intake.source.startswith("imap:") or intake.source in ("file", "pipe")
    }
    kept = stored_sizes(session, partial)
    return {intake_id for intake_id, size in kept.items() if size < partial[intake_id]}


def answer(session: Session, ctx: Context, intake: Intake, mail: ParsedMail) -> str:
    """Tell the sender the mail was not taken (the "message too large" mail), unless it is a
    mail nothing automatic may answer; the reason to record."""
    limit = ctx.config.smtp.max_message_size
    reason = f"too large: {intake.size} bytes, over the limit of {limit}; header stored only"
    if not may_answer(session, ctx, intake, mail):
        return reason
    contact = identify(session, mail.from_addr).contact
    language = (contact.language if contact else None) or mail_language(mail, ctx.languages)
    notify.send_too_large(
        session, ctx, mail.from_addr, mail.subject, intake.size, limit, mail.message_id, language
    )
    return reason


def may_answer(session: Session, ctx: Context, intake: Intake, mail: ParsedMail) -> bool:
    """A person's mail, from a usable address: not our own, a bounce, automatic mail, a
    sender on the ignore list, or mail our MTA says is forged (the note would go to the
    forger's victim). The loop brakes still count the answer."""
    screening = screen(mail, ctx.own_addresses, ctx.own_domain, ctx.secret_key)
    if screening.own or screening.bounce or screening.automatic or not mail.from_addr:
        return False
    if ignored_sender(mail, ctx.config.loops.ignore_senders) is not None:
        return False

    def header() -> bytes:  # read only when the mail carries a verdict to check
        return stored_raw(session, intake.id or 0)

    return verify_customer(mail, header, ctx.config.security).ok
