"""Applies routing decisions: the one place that writes tickets, articles and events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, update
from sqlmodel import Session, select

from mailgate.config import Config
from mailgate.desk.assign import assign
from mailgate.desk.customers import (
    Sender,
    contact_by_email,
    domain_of,
    ensure_contact,
    is_colleague,
    organisation,
    organisation_for_domain,
    remembered,
)
from mailgate.desk.decisions import Envelope, FollowUp, NewTicket
from mailgate.desk.unverified import unverified_contact
from mailgate.moments import aware
from mailgate.reading.details import Details, find_details
from mailgate.reading.mime.budgets import budget_notes
from mailgate.reading.mime.report import bounce_summary
from mailgate.reading.parse import ParsedMail
from mailgate.store import blobs
from mailgate.store.database import direct, insert_row, update_row
from mailgate.store.later import later
from mailgate.store.models import (
    Article,
    Attachment,
    Contact,
    Counter,
    Event,
    Intake,
    Participant,
    Ticket,
    TicketReference,
)

TICKET_COUNTER = "ticket"
# Tickets this transaction opened and gave no further agent (#cc AGENT) so far: the staff
# notification need not look for any.
WITHOUT_FURTHER_AGENTS = "tickets without further agents"
# Plain statements on the tables, built once: the counter and attachment records are written
# at once, events with the others of the transaction (later.py). Nothing reads them back as
# objects in the transaction, and as ORM statements, or through the unit of work, each costs
# several times as much. They refer only to rows already written (rows with an id), so
# nothing pending need be flushed first.
_COUNTERS = Counter.__table__  # type: ignore[attr-defined]
_COUNT_UP = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == TICKET_COUNTER)
    .values(value=_COUNTERS.c.value + 1)
    .returning(_COUNTERS.c.value)
)
_INSERT_EVENT = insert(Event.__table__)  # type: ignore[attr-defined]
_INSERT_ATTACHMENTS = insert(Attachment.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Applied:
    """What apply wrote, for the notifications that follow in the same transaction."""

    ticket: Ticket
    article: Article
    contact: Contact | None  # the requester of a new ticket; the writing contact of a reply
    created: bool


def next_ticket_number(session: Session, start: int) -> int:
    """A number no other transaction can take: the counter row is locked by the update. The
    update comes first, as one statement: the row is missing only before the first ticket."""
    number = _count_up(session)
    if number is None:
        session.add(Counter(name=TICKET_COUNTER, value=start - 1))
        session.flush()
        number = _count_up(session)
    assert number is not None, "the counter row was just added"
    return number


def _count_up(session: Session) -> int | None:
    """The counter's next value, taken; None while there is no counter row."""
    value = direct(session, _COUNT_UP).scalar_one_or_none()
    return None if value is None else int(value)


def as_utc(moment: datetime | None) -> datetime | None:
    """A mail's Date without a zone is taken as UTC rather than refused."""
    return None if moment is None else aware(moment)


def set_status(ticket: Ticket, new_status: str, now: datetime) -> None:
    """The one place a ticket's status is written, with the fields that belong to a status."""
    ticket.status = new_status
    ticket.updated_at = now
    ticket.reminded_at = None  # a reminder belongs to the spell that has just ended
    if new_status != "hold":
        # A resubmission date means nothing once the ticket is no longer waiting.
        ticket.hold_until = None
    if new_status in ("delivered", "closed"):
        # Resolved when the solution went out; confirming it later does not move the moment.
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None


def record_event(
    session: Session, ticket: Ticket, actor: str, action: str, detail: str, now: datetime
) -> None:
    row = {
        "ticket_id": ticket.id or 0,
        "actor": actor,
        "action": action,
        "detail": detail,
        "created_at": now,
    }
    later(session, _write_events, ("event",), row)


def _write_events(session: Session, rows: list[dict[str, object]]) -> None:
    direct(session, _INSERT_EVENT, rows if len(rows) > 1 else rows[0])


def add_article(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    intake: Intake,
    direction: str,
    note: str,
    data_dir: Path,
    now: datetime,
    text: str | None = None,
) -> Article:
    article = Article(
        ticket_id=ticket.id or 0,
        direction=direction,
        from_addr=mail.from_addr,
        from_name=mail.from_name,
        to_addrs=", ".join(mail.to),
        cc_addrs=", ".join(mail.cc),
        subject=mail.subject,
        date=as_utc(mail.date),
        message_id=mail.message_id or "",
        text=mail.text if text is None else text,
        html=mail.html,
        note="; ".join(filter(None, [note, *budget_notes(mail.defects)])),
        intake_id=intake.id,
        created_at=now,
    )
    insert_row(session, article)  # read, never changed, by what follows in the transaction
    attachments = [
        {
            "article_id": article.id or 0,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": len(part.payload),
            "sha256": blobs.put(session, data_dir, part.payload),
            "content_id": part.content_id,
            "inline": part.inline,
        }
        for part in mail.parts
    ]
    if attachments:
        direct(session, _INSERT_ATTACHMENTS, attachments)
    return article


@dataclass(frozen=True)
class Opening:
    """Who a new ticket is for and what its first article says; by default the sender and
    their mail, for a phoned-in request (`#customer`) the customer and the agent's text."""

    address: str
    name: str = ""
    text: str | None = None  # None: the mail's text
    direction: str = "customer"
    language: str | None = None
    opened_by: int | None = None  # the agent who opened it for the customer (`#customer`)


def open_ticket(
    session: Session,
    decision: NewTicket,
    mail: ParsedMail,
    intake: Intake,
    env: Envelope,
    cfg: Config,
    now: datetime,
    opening: Opening,
) -> Applied:
    if decision.ambiguous_from:
        contact = unverified_contact(session, now)
    else:
        contact = ensure_contact(
            session, opening.address, opening.name, cfg.customers, now, opening.language
        )
    details = find_details(mail.text, cfg.tickets.reference_patterns)
    if decision.unverified:
        # A forged mail's `Priority: A` is nobody's word; its reference numbers still help.
        details = Details(references=details.references)
    # Read (and held) here rather than first by assign: the acknowledgement and the staff
    # notification read the organisation too, and find it in the session that way.
    organisation(session, contact.organisation_id)
    routing = assign(
        session, cfg, contact.organisation_id, intake.source, env.served_address, opening.opened_by
    )
    ticket = Ticket(
        number=next_ticket_number(session, cfg.tickets.start),
        subject=mail.subject,
        organisation_id=contact.organisation_id,
        requester_id=contact.id or 0,
        source=intake.source,
        served_address=env.served_address,
        linked_ticket_id=decision.linked_ticket_id,
        assignee_id=routing.assignee_id,
        category=routing.category,
        priority=details.priority or "B",
        type=details.type,
        created_at=now,
        updated_at=now,
        last_action_by="customer",
        last_action_at=now,
    )
    insert_row(session, ticket, track=True)  # commands and notifications may change it
    remembered(session, WITHOUT_FURTHER_AGENTS)[ticket.id] = ticket
    detail = f"from {mail.from_addr}"
    if decision.linked_ticket_id:
        detail += f"; follows closed ticket id {decision.linked_ticket_id}"
    if decision.unverified:
        detail += f"; {decision.unverified}"
    record_event(session, ticket, mail.from_addr or "system", "created", detail, now)
    if routing.assignee_id is not None:
        record_event(session, ticket, "system", "assigned", f"agent id {routing.assignee_id}", now)
    for reference in details.references:
        session.add(TicketReference(ticket_id=ticket.id or 0, reference=reference))
    note = decision.unverified
    article = add_article(
        session, ticket, mail, intake, opening.direction, note, cfg.data_dir, now, opening.text
    )
    return Applied(ticket, article, contact, created=True)


def add_follow_up(
    session: Session,
    decision: FollowUp,
    mail: ParsedMail,
    intake: Intake,
    sender: Sender,
    cfg: Config,
    now: datetime,
    text: str | None = None,
) -> Applied:
    ticket = session.get(Ticket, decision.ticket_id)
    assert ticket is not None, "route only names tickets that exist"
    contact = sender.contact
    if decision.direction == "customer" and contact is None:
        # A colleague from a domain the ticket's company claims, writing for the first time.
        contact = ensure_contact(session, mail.from_addr, mail.from_name, cfg.customers, now)
    article = add_article(
        session, ticket, mail, intake, decision.direction, decision.note, cfg.data_dir, now, text
    )
    actor = mail.from_addr or "system"
    record_event(
        session, ticket, actor, "article", f"{decision.direction} {decision.note}".strip(), now
    )
    changes: dict[str, object] = {"updated_at": now}
    # Automatic, unverified and forged mail is stored, but is nobody's action on the ticket.
    acted = not (decision.automatic or decision.unverified)
    if acted and decision.direction in ("customer", "staff"):
        changes.update(last_action_by=decision.direction, last_action_at=now)
    update_row(session, ticket, **changes)
    if decision.reopen:
        record_event(session, ticket, actor, "status", "closed -> open (customer replied)", now)
        set_status(ticket, "open", now)
    if decision.failing:
        said = "; ".join(mail.report_diagnostics)[:300] or bounce_summary(mail.text)
        mark_failing(session, ticket, decision.failing, said, now)
    return Applied(ticket, article, contact, created=False)


FAILING_EVENT = "address_failing"  # detail: "<address>: <what the bounce said>"


def mark_failing(
    session: Session, ticket: Ticket, addresses: tuple[str, ...], said: str, now: datetime
) -> None:
    """Contacts a bounce names stop getting mail; the ticket's history says which and why,
    which is where staff (and the mail telling them) read it from later."""
    for contact in session.exec(select(Contact).where(Contact.email.in_(addresses))):  # type: ignore[attr-defined]
        contact.failing = True
        session.add(contact)
        record_event(session, ticket, "system", FAILING_EVENT, f"{contact.email}: {said}", now)


def add_colleagues(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    cfg: Config,
    now: datetime,
    own: frozenset[str],
) -> list[str]:
    """A customer's CC to colleagues (customers.is_colleague) makes them participants; any
    other address in CC gets nothing of this ticket (staff can add it with #cc)."""
    added = []
    for address in dict.fromkeys((*mail.to, *mail.cc)):
        if address in own or address == mail.from_addr or cfg.smtp.serves(address):
            continue
        contact = contact_by_email(session, address)
        if contact is None:
            org = organisation_for_domain(session, domain_of(address))
            if org is None or org.id != ticket.organisation_id:
                continue
            contact = ensure_contact(session, address, "", cfg.customers, now)
        if not is_colleague(session, contact, ticket.organisation_id):
            continue
        if contact.id == ticket.requester_id:
            continue
        if session.get(Participant, (ticket.id, contact.id)) is None:
            session.add(Participant(ticket_id=ticket.id or 0, contact_id=contact.id or 0))
            record_event(session, ticket, mail.from_addr, "cc", f"added {address}", now)
            added.append(address)
    return added
