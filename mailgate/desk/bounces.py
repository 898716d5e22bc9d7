"""Delivery reports on our mail: which sent mail a bounce is about, what proves it, and the
addresses it may mark as failing."""

from __future__ import annotations

from sqlmodel import Session, col, select

from mailgate.desk.customers import hold
from mailgate.desk.decisions import Decision, FollowUp, Ignore
from mailgate.desk.notes import FAILURE_REPORT, UNVERIFIED_REPORT
from mailgate.reading.marks import bounce_outbox_id, is_bounce_address
from mailgate.reading.parse import ParsedMail
from mailgate.reading.screen import failed_recipients, is_delay_warning, referenced_ids
from mailgate.store.models import Intake, Outbox, Ticket


def _bounce_candidates(mail: ParsedMail, intake: Intake) -> list[str]:
    """Where a bounce came to: the envelope recipient, else Delivered-To/X-Original-To, else To."""
    return [*intake.envelope_to.splitlines(), *mail.delivered_to, *mail.to]


def to_bounce_address(mail: ParsedMail, intake: Intake) -> bool:
    """Sent to one of our VERP addresses, signed or not: only reports on our mail go there."""
    return any(is_bounce_address(a) for a in _bounce_candidates(mail, intake))


def verp_outbox_row(
    session: Session, mail: ParsedMail, intake: Intake, key: bytes
) -> Outbox | None:
    """The outbox row a bounce was sent back for: named by the signed VERP address it came to.
    An unsigned or wrongly signed one names nothing: its number is a counter anyone can guess."""
    for address in _bounce_candidates(mail, intake):
        outbox_id = bounce_outbox_id(address, key)
        if outbox_id is not None and (row := session.get(Outbox, outbox_id)) is not None:
            return row
    return None


def bounce_decision(
    session: Session, mail: ParsedMail, intake: Intake, ticket: Ticket | None, key: bytes
) -> Decision:
    """A bounce becomes a system note on its ticket. It marks addresses failing only when it
    proves it reports on our mail (report_proof); then the addresses the report names that
    the proven mail went to, else, for a signed VERP address, that mail's recipients."""
    row = verp_outbox_row(session, mail, intake, key)
    if ticket is None and row is not None and row.ticket_id is not None:
        ticket = hold(session, session.get(Ticket, row.ticket_id))
    if ticket is None:
        return Ignore("bounce about no ticket of ours")
    proven = report_proof(session, mail, row)
    if not proven:
        return FollowUp(ticket.id or 0, "system", UNVERIFIED_REPORT, "bounce")
    # Never an address the text or a forged report names that the proven mail did not go to.
    failing = tuple(a for a in failed_recipients(mail) if a in proven)
    # A standard report that names no failure is a delay warning: nobody is failing yet.
    if not failing and row is not None and mail.report_type is None and not is_delay_warning(mail):
        failing = recipients_of(row.to_addrs)
    return FollowUp(ticket.id or 0, "system", FAILURE_REPORT, "bounce", failing=failing)


def report_proof(session: Session, mail: ParsedMail, row: Outbox | None) -> set[str]:
    """The addresses a bounce may mark: the recipients of the mail its signed VERP address
    names, and of each mail of ours whose Message-ID it quotes (which only a recipient of
    that mail, or their mail system, can know). Empty: it proves nothing."""
    proven = set(recipients_of(row.to_addrs)) if row is not None else set()
    quoted = [mid for mid in referenced_ids(mail) if mid]
    if quoted:
        rows = session.exec(select(Outbox.to_addrs).where(col(Outbox.message_id).in_(quoted)))
        proven.update(a for to_addrs in rows for a in recipients_of(to_addrs))
    return proven


def recipients_of(to_addrs: str) -> tuple[str, ...]:
    return tuple(a.strip().lower() for a in to_addrs.split(",") if a.strip())
