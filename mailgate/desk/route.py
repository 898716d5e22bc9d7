"""Decides what a parsed mail becomes: a new ticket, a follow-up, ignored or quarantined."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from mailgate.config import Config
from mailgate.desk.customers import (
    Sender,
    domain_of,
    hold,
    is_colleague,
    is_known_customer,
    organisation_for_domain,
    remembered,
)
from mailgate.desk.unverified import from_note
from mailgate.moments import aware
from mailgate.reading import tags
from mailgate.reading.marks import (
    bounce_outbox_id,
    is_bounce_address,
    ticket_number_from_message_id,
)
from mailgate.reading.mime.report import qmail_original_ids, returned_message_ids
from mailgate.reading.parse import AMBIGUOUS_FROM, ParsedMail
from mailgate.reading.screen import (
    Screening,
    declares_delivery_report,
    failed_recipients,
    from_daemon,
    ignored_sender,
    is_delay_warning,
)
from mailgate.reading.verify import NOT_VERIFIED
from mailgate.store.models import (
    COMPANY,
    DONE,
    Article,
    Contact,
    Event,
    Intake,
    Outbox,
    Participant,
    Ticket,
)


@dataclass(frozen=True)
class NewTicket:
    automatic: str | None = None  # why no acknowledgement may go out
    linked_ticket_id: int | None = None  # the closed ticket this one follows on from
    unverified: str = ""  # the warning a mail marked forged is kept with; it changes nothing
    # The From names no single clean address: the ticket is the unverified sender's
    # (mailgate.unverified), and `unverified` holds the From as received.
    ambiguous_from: bool = False


@dataclass(frozen=True)
class FollowUp:
    ticket_id: int
    direction: str  # customer | staff | internal | system
    note: str = ""
    automatic: str | None = None
    reopen: bool = False
    failing: tuple[str, ...] = ()  # addresses a delivery report says do not take mail
    unverified: str = ""  # as NewTicket's: stored, and nothing else


@dataclass(frozen=True)
class ListRequest:
    """A customer asks for the open tickets they may see (subject `list`, …)."""

    address: str


@dataclass(frozen=True)
class Ignore:
    reason: str
    answer: bool = False  # the sender is told (a polite refusal), unless the mail is automatic


@dataclass(frozen=True)
class Quarantine:
    reason: str


Decision = NewTicket | FollowUp | ListRequest | Ignore | Quarantine

# Built once, like the other look-ups every message makes: building a statement costs
# about as much again as running it.
_TICKET_BY_NUMBER = select(Ticket).where(Ticket.number == bindparam("number"))
# What the transaction knows of the stored messages of a Message-ID: id -> _Copy.
_SAME_MESSAGE_ID_KIND = "stored messages by Message-ID"


@dataclass(frozen=True)
class Envelope:
    """What the intake knew besides the message: the served address it came in on."""

    served_address: str = ""
    is_comment_address: bool = False


def referenced_ids(mail: ParsedMail) -> list[str]:
    ids = [*mail.in_reply_to, *reversed(mail.references), *mail.report_original_ids]
    ids += qmail_original_ids(mail.text)
    if from_daemon(mail) or declares_delivery_report(mail):
        # A text bounce, or a report whose parts are lost, quotes the returned mail's headers.
        ids += returned_message_ids(mail.text)
    return list(dict.fromkeys(i for i in ids if i))


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


def _bounce(
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
        return FollowUp(ticket.id or 0, "system", "unverified delivery report", "bounce")
    # Never an address the text or a forged report names that the proven mail did not go to.
    failing = tuple(a for a in failed_recipients(mail) if a in proven)
    # A standard report that names no failure is a delay warning: nobody is failing yet.
    if not failing and row is not None and mail.report_type is None and not is_delay_warning(mail):
        failing = recipients_of(row.to_addrs)
    return FollowUp(ticket.id or 0, "system", "delivery failure report", "bounce", failing=failing)


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


def find_ticket(
    session: Session,
    mail: ParsedMail,
    cfg: Config,
    own_domain: str,
    key: bytes,
    sender: Sender | None = None,
) -> Ticket | None:
    """The ticket a mail belongs to: by tag in the subject, else by the Message-IDs it answers.
    Held for the transaction: the steps that apply the decision read it again by id."""
    return hold(session, _find_ticket(session, mail, cfg, own_domain, key, sender))


def _find_ticket(
    session: Session,
    mail: ParsedMail,
    cfg: Config,
    own_domain: str,
    key: bytes,
    sender: Sender | None,
) -> Ticket | None:
    number = tags.find_number(mail.subject, cfg.tickets.prefix)
    if number is not None:
        ticket = session.exec(_TICKET_BY_NUMBER, params={"number": number}).first()
        if ticket is not None:
            return ticket
    ids = referenced_ids(mail)
    if not ids:
        return None
    sent = session.exec(select(Outbox.ticket_id).where(col(Outbox.message_id).in_(ids))).first()
    if sent is not None:
        return session.get(Ticket, sent)
    received = _received_on(session, ids, sender)
    if received is not None:
        return received
    for mid in ids:
        # Only one of our signed ids: a forged one of the same shape threads nowhere.
        encoded = ticket_number_from_message_id(mid, own_domain, key)
        if encoded is not None:
            return session.exec(_TICKET_BY_NUMBER, params={"number": encoded}).first()
    return None


def _received_on(session: Session, ids: list[str], sender: Sender | None) -> Ticket | None:
    """The ticket of an article with one of these Message-IDs. Anyone can write any
    Message-ID, so several tickets may hold one: the sender's own comes first, then the
    oldest."""
    query = select(Article.ticket_id).where(col(Article.message_id).in_(ids))
    found = [session.get(Ticket, i) for i in sorted(set(session.exec(query)))]
    tickets = [t for t in found if t is not None]
    if sender is not None and len(tickets) > 1:
        return next((t for t in tickets if is_participant(session, t, sender)), tickets[0])
    return tickets[0] if tickets else None


def is_participant(session: Session, ticket: Ticket, sender: Sender) -> bool:
    """Staff, the requester, a CC contact, or a colleague (customers.is_colleague)."""
    if sender.is_agent:
        return True
    contact: Contact | None = sender.contact
    if contact is None:
        # Not a contact yet, but from a domain the operator says is the ticket's company's.
        org = organisation_for_domain(session, domain_of(sender.address))
        return org is not None and org.id == ticket.organisation_id and org.kind == COMPANY
    if contact.id == ticket.requester_id or is_colleague(session, contact, ticket.organisation_id):
        return True
    return session.get(Participant, (ticket.id, contact.id)) is not None


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


def _for_existing(
    session: Session,
    ticket: Ticket,
    sender: Sender,
    screening: Screening,
    env: Envelope,
    cfg: Config,
    now: datetime,
) -> Decision:
    """Staff mail always lands on the ticket its tag names and never reopens it by itself
    (only a command does). A customer's reply reopens a closed ticket within `reopen_days`;
    a later one joins the ticket that already follows on from it, else opens that one."""
    note = "automatic reply" if screening.automatic else ""
    if sender.is_agent:
        direction = "internal" if env.is_comment_address else "staff"
        return FollowUp(ticket.id or 0, direction, note, screening.automatic)
    if sender.unverified:
        # Kept for staff to judge; it neither confirms, reopens nor unsubscribes.
        why = sender.unverified
        return FollowUp(ticket.id or 0, "customer", why, screening.automatic, unverified=why)
    reopen = ticket.status == "closed" and not screening.automatic
    if reopen and now - closed_since(session, ticket) > timedelta(days=cfg.tickets.reopen_days):
        successor = follow_on(session, ticket, sender)
        if successor is None:
            return NewTicket(linked_ticket_id=ticket.id)
        return _for_existing(session, successor, sender, screening, env, cfg, now)
    return FollowUp(ticket.id or 0, "customer", note, screening.automatic, reopen)


def closed_since(session: Session, ticket: Ticket) -> datetime:
    """When the ticket was last closed: a comment or an auto-reply stored on it since does
    not move that moment (updated_at would). Without such an event, when it last changed."""
    query = (
        select(Event.created_at)
        .where(
            Event.ticket_id == ticket.id,
            Event.action == "status",
            col(Event.detail).like("% -> closed%"),
        )
        .order_by(col(Event.id).desc())
    )
    return aware(session.exec(query).first() or ticket.updated_at)


def follow_on(session: Session, ticket: Ticket, sender: Sender) -> Ticket | None:
    """The newest ticket opened as the follow-on of `ticket` that the sender takes part in:
    later replies on the old thread belong there, not to yet another new ticket."""
    query = (
        select(Ticket)
        .where(Ticket.linked_ticket_id == ticket.id, col(Ticket.id) != ticket.id)
        .order_by(col(Ticket.id).desc())
    )
    for candidate in session.exec(query):
        if is_participant(session, candidate, sender):
            return hold(session, candidate)
    return None


def route(
    session: Session,
    mail: ParsedMail,
    intake: Intake,
    screening: Screening,
    sender: Sender,
    env: Envelope,
    cfg: Config,
    own_domain: str,
    key: bytes,
    now: datetime,
) -> Decision:
    """Reads, never writes: the one decision for this mail."""
    if limits := [d.removeprefix("limit:") for d in mail.defects if d.startswith("limit:")]:
        # Only the headers were read; an operator decides (`mailgate quarantine release`).
        return Quarantine(f"message exceeds limits: {', '.join(limits)}")
    if screening.own:
        return Ignore(f"loop: {screening.own}")
    pattern = ignored_sender(mail, cfg.loops.ignore_senders)
    if pattern is not None:
        return Ignore(f"ignore list: sender matches {pattern}")
    duplicate = find_duplicate(session, mail, intake, sender)
    if duplicate is not None:
        return Ignore(f"duplicate of stored message {duplicate}")
    ticket = find_ticket(session, mail, cfg, own_domain, key, sender)
    if screening.bounce or (from_daemon(mail) and to_bounce_address(mail, intake)):
        return _bounce(session, mail, intake, ticket, key)
    if AMBIGUOUS_FROM in mail.defects:
        return _ambiguous(mail, screening, cfg)
    if not mail.from_addr:
        return Quarantine("no usable sender address in From")
    if ticket is None:
        if is_list_request(session, mail, sender, screening, cfg):
            if sender.unverified:
                return Ignore(f"ticket list not sent: {sender.unverified}")
            return ListRequest(mail.from_addr)
        return _new_ticket(session, mail, screening, sender, cfg)
    if not is_participant(session, ticket, sender):
        if cfg.tickets.unverified_tag_policy == "new-ticket":
            return _new_ticket(session, mail, screening, sender, cfg)
        return FollowUp(ticket.id or 0, "internal", "unverified sender", "unverified sender")
    return _for_existing(session, ticket, sender, screening, env, cfg, now)


def _ambiguous(mail: ParsedMail, screening: Screening, cfg: Config) -> Decision:
    """Whoever the From names, it may name someone else too: never a contact's mail, not even
    on the ticket its tag names. A ticket of the unverified sender, or quarantine by policy;
    a desk that rejects unknown senders has nobody here it could refuse, so it holds it."""
    held = cfg.security.ambiguous_from == "quarantine"
    if held or cfg.customers.unknown_sender == "reject":
        return Quarantine("ambiguous sender in From: it names no single clean address")
    return NewTicket(automatic=screening.automatic, unverified=from_note(mail), ambiguous_from=True)


def is_list_request(
    session: Session, mail: ParsedMail, sender: Sender, screening: Screening, cfg: Config
) -> bool:
    """A person's (not automatic) mail whose subject asks for their list. Someone without
    tickets gets a short answer, never a ticket titled "list"; under the reject policy an
    unknown sender gets its refusal instead. The subject is looked at first: few mails ask
    for a list, and it needs no query."""
    if sender.is_agent or screening.automatic:
        return False
    wanted = {s.strip().lower() for s in cfg.tickets.list_subjects}
    if tags.strip_reply_prefixes(mail.subject).strip().lower() not in wanted:
        return False
    return cfg.customers.unknown_sender != "reject" or is_known_customer(session, mail.from_addr)


def _new_ticket(
    session: Session, mail: ParsedMail, screening: Screening, sender: Sender, cfg: Config
) -> Decision:
    if (
        cfg.customers.unknown_sender == "reject"
        and not sender.is_agent
        and not is_known_customer(session, mail.from_addr)
    ):
        # A forged mail must not make us write to the address it names.
        answer = not screening.automatic and not sender.unverified
        return Ignore(f"unknown sender {mail.from_addr} rejected by policy", answer=answer)
    return NewTicket(automatic=screening.automatic, unverified=sender.unverified)
