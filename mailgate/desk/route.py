"""Decides what a parsed mail becomes: a new ticket, a follow-up, ignored or quarantined."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from mailgate.config import Config
from mailgate.desk.bounces import bounce_decision, to_bounce_address
from mailgate.desk.customers import (
    Sender,
    domain_of,
    hold,
    is_colleague,
    is_known_customer,
    organisation_for_domain,
)
from mailgate.desk.decisions import (
    Decision,
    Envelope,
    FollowUp,
    Ignore,
    ListRequest,
    NewTicket,
    Quarantine,
)
from mailgate.desk.duplicates import find_duplicate
from mailgate.desk.notes import AUTOMATIC_REPLY
from mailgate.desk.unverified import STRANGER, from_note
from mailgate.moments import aware
from mailgate.reading import tags
from mailgate.reading.header_fields import AMBIGUOUS_FROM
from mailgate.reading.marks import (
    ticket_number_from_message_id,
)
from mailgate.reading.parse import ParsedMail
from mailgate.reading.screen import (
    Screening,
    from_daemon,
    ignored_sender,
    referenced_ids,
)
from mailgate.store.models import (
    COMPANY,
    Article,
    Contact,
    Event,
    Intake,
    Outbox,
    Participant,
    Ticket,
)

# Built once, like the other look-ups every message makes: building a statement costs
# about as much again as running it.
_TICKET_BY_NUMBER = select(Ticket).where(Ticket.number == bindparam("number"))


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
    note = AUTOMATIC_REPLY if screening.automatic else ""
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
        return bounce_decision(session, mail, intake, ticket, key)
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
        # Staff read it (it may be the customer's other address, or a colleague's news);
        # automatic mail from a stranger is only stored.
        automatic = screening.automatic
        return FollowUp(ticket.id or 0, "internal", STRANGER, automatic, unverified=STRANGER)
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
