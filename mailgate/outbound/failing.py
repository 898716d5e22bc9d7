"""Failing addresses: when and why one bounced, and clearing it once it works again."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from mailgate.desk.customers import contact_by_email
from mailgate.desk.tickets import FAILING_EVENT, record_event
from mailgate.moments import aware
from mailgate.outbound.context import Context
from mailgate.reading import tags
from mailgate.store.models import Contact, Event, Ticket

log = logging.getLogger("mailgate.failing")

CLEARED_EVENT = "address_cleared"


@dataclass(frozen=True)
class Bounced:
    """The latest bounce that marked an address failing: when, on which ticket, what it said."""

    address: str
    at: datetime | None = None
    ticket_id: int | None = None
    said: str = ""


class UnknownAddress(LookupError):
    """No contact has this address."""


def last_bounce(session: Session, address: str) -> Bounced:
    """Read from the ticket history mark_failing wrote; an address marked before that was
    written is still failing, only without a date and a reason."""
    prefix = f"{address}: "
    query = (
        select(Event)
        .where(Event.action == FAILING_EVENT, col(Event.detail).startswith(prefix, autoescape=True))
        .order_by(col(Event.id).desc())
        .limit(1)
    )
    event = session.exec(query).first()
    if event is None:
        return Bounced(address)
    return Bounced(address, event.created_at, event.ticket_id, event.detail[len(prefix) :])


def clear(session: Session, contact: Contact, actor: str, why: str, now: datetime) -> Bounced:
    """The address takes mail again. The ticket whose bounce marked it says so in its
    history, beside the mark; returns that bounce."""
    bounced = last_bounce(session, contact.email)
    contact.failing = False
    session.add(contact)
    ticket = session.get(Ticket, bounced.ticket_id) if bounced.ticket_id else None
    if ticket is not None:
        record_event(session, ticket, actor, CLEARED_EVENT, f"{contact.email}: {why}", now)
    log.info("event=address_cleared address=%s actor=%s why=%r", contact.email, actor, why)
    return bounced


def clear_by_staff(session: Session, address: str, now: datetime) -> tuple[str, Bounced | None]:
    """`mailgate customers clear-failing`: the contact's address, and the bounce cleared
    (None when the address was not failing)."""
    contact = contact_by_email(session, address.strip().lower())
    if contact is None:
        raise UnknownAddress(f"no contact with the address {address.strip()}")
    if not contact.failing:
        return contact.email, None
    return contact.email, clear(session, contact, "cli", "cleared by staff", now)


def describe(session: Session, ctx: Context, bounced: Bounced) -> str:
    """ "bounced 2026-11-02 09:30 UTC on CID-1000", in the desk's time zone; "" unknown."""
    if bounced.at is None:
        return ""
    zone = ZoneInfo(ctx.config.tickets.timezone)
    when = f"{aware(bounced.at).astimezone(zone):%Y-%m-%d %H:%M} {ctx.config.tickets.timezone}"
    ticket = session.get(Ticket, bounced.ticket_id) if bounced.ticket_id else None
    where = f" on {tags.cid(ctx.config.tickets.prefix, ticket.number)}" if ticket else ""
    return f"bounced {when}{where}"
