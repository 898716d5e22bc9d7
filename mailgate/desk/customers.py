"""Sender to agent or contact and organisation; the unknown-sender policy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, event, func
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from mailgate.config import CustomersConfig
from mailgate.moments import aware
from mailgate.reading.commands import duration_problem, parse_signed_duration
from mailgate.store.database import insert_row
from mailgate.store.models import (
    COMPANY,
    PERSONAL,
    POOL,
    Agent,
    Contact,
    Contingent,
    Organisation,
    OrganisationDomain,
    Participant,
    Ticket,
    TimeEntry,
)

Row = TypeVar("Row")


# --- rows a transaction has looked up already ------------------------------------------------

_REMEMBERED = "mailgate.remembered"
# Marks the agents remembered in a transaction as all of them (an added one joins them).
_ALL_AGENTS = object()
# Built once: every message looks up its sender, and building a statement costs about as
# much again as running it.
_CONTACT_BY_EMAIL = select(Contact).where(Contact.email == bindparam("address"))


def remembered(session: Session, kind: str) -> dict[Any, Any]:
    """What this transaction has looked up already, of one kind, by key. One message's steps
    ask for the same sender, contact and organisation again and again, and the messages of a
    batch share them. The session's identity map does not spare those reads: it holds rows
    nobody changed only weakly, so a row one step read is gone by the next."""
    return session.info.setdefault(_REMEMBERED, {}).setdefault(kind, {})


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    # Rows looked up in a transaction that ended may have changed since, or (rolled back)
    # be gone. Each flush runs in a transaction of its own inside: those do not count.
    if transaction.parent is None or transaction.nested:
        session.info.pop(_REMEMBERED, None)


@event.listens_for(Session, "transient_to_pending")
def _remember_added(session: Session, row: object) -> None:
    # However an agent, a contact or a domain's claim is added, what this transaction found
    # unknown is unknown no longer: the look-ups below remember "none" too.
    if _REMEMBERED not in session.info:
        return
    if isinstance(row, Agent | Contact):
        remembered(session, type(row).__name__)[row.email] = row
    elif isinstance(row, OrganisationDomain):
        remembered(session, OrganisationDomain.__name__)[row.domain] = row


def hold(session: Session, row: Row) -> Row:
    """Keep a row for the rest of the transaction, so that the steps after this one find it
    by primary key (session.get) without reading it again."""
    if row is not None:
        remembered(session, "held")[id(row)] = row
    return row


def organisation(session: Session, organisation_id: int) -> Organisation | None:
    """The organisation by id, read once a transaction: routing, the acknowledgement and the
    staff notification all need the sender's."""
    return hold(session, session.get(Organisation, organisation_id))


def agent_by_email(session: Session, address: str) -> Agent | None:
    """The agent with exactly this address, active or not. A transaction's first look-up
    reads them all: a desk has few agents, and nearly every mail asks about its sender."""
    known = remembered(session, Agent.__name__)
    if _ALL_AGENTS not in known:
        known.update({agent.email: agent for agent in session.exec(select(Agent))})
        known[_ALL_AGENTS] = None
    return known.get(address)


def contact_by_email(session: Session, address: str) -> Contact | None:
    """The contact with exactly this address."""
    known = remembered(session, Contact.__name__)
    if address not in known:
        known[address] = session.exec(_CONTACT_BY_EMAIL, params={"address": address}).first()
    return known[address]


def look_up_contacts(session: Session, addresses: Iterable[str]) -> None:
    """Read the contacts of several addresses (a batch's senders) and their organisations,
    a query each; each is then remembered as contact_by_email and organisation remember
    what they read, a contact found or not."""
    known = remembered(session, Contact.__name__)
    wanted = {address.lower() for address in addresses if address} - known.keys()
    if not wanted:
        return
    found = list(session.exec(select(Contact).where(col(Contact.email).in_(wanted))))
    known.update(dict.fromkeys(wanted))
    known.update({contact.email: contact for contact in found})
    organisation_ids = {contact.organisation_id for contact in found}
    # A new sender's contact goes to the company that claims their domain, if one does.
    claims = _look_up_claims(session, {domain_of(a) for a in wanted if known[a] is None})
    organisation_ids |= {claim.organisation_id for claim in claims}
    query = select(Organisation).where(col(Organisation.id).in_(organisation_ids))
    for row in session.exec(query) if organisation_ids else ():
        hold(session, row)


def _look_up_claims(session: Session, domains: set[str]) -> list[OrganisationDomain]:
    """The claims of these domains, a query for all; each remembered, a claim found or not."""
    known = remembered(session, OrganisationDomain.__name__)
    wanted = domains - known.keys()
    if not wanted:
        return []
    query = select(OrganisationDomain).where(col(OrganisationDomain.domain).in_(wanted))
    found = list(session.exec(query))
    known.update(dict.fromkeys(wanted))
    known.update({claim.domain: claim for claim in found})
    return found


@dataclass(frozen=True)
class Sender:
    """Who wrote a mail, as far as the database knows before anything is written."""

    address: str
    agent: Agent | None = None
    contact: Contact | None = None
    # A customer's mail our MTA marks as forged: the warning it is stored with, else "".
    unverified: str = ""

    @property
    def is_agent(self) -> bool:
        return self.agent is not None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def identify(session: Session, address: str) -> Sender:
    address = address.lower()
    agent = agent_by_email(session, address)
    contact = contact_by_email(session, address)
    return Sender(address=address, agent=agent if agent and agent.active else None, contact=contact)


def organisation_for_domain(session: Session, domain: str) -> Organisation | None:
    """The company that claims this domain; a claim is only ever the operator's."""
    domain = domain.lower()
    known = remembered(session, OrganisationDomain.__name__)
    if domain not in known:
        known[domain] = session.get(OrganisationDomain, domain)
    claim = known[domain]
    return organisation(session, claim.organisation_id) if claim else None


def is_colleague(session: Session, contact: Contact, organisation_id: int) -> bool:
    """Whether the contact is a colleague of the people of this organisation: the one
    question behind every "may see, may take part". Members of a personal organisation or
    of the pool of unassigned senders are strangers to each other."""
    if contact.organisation_id != organisation_id:
        return False
    org = organisation(session, organisation_id)
    return org is not None and org.kind == COMPANY


def visible_tickets(
    session: Session, contact: Contact, closed: bool = False
) -> SelectOfScalar[Ticket]:
    """The query for the open tickets (with `closed`, all tickets) a contact may see, by
    number: their company's, else only those they asked or were made a participant of."""
    query = select(Ticket).order_by(col(Ticket.number))
    if not closed:
        query = query.where(Ticket.status != "closed")
    if is_colleague(session, contact, contact.organisation_id):
        return query.where(Ticket.organisation_id == contact.organisation_id)
    taking_part = select(Participant.ticket_id).where(Participant.contact_id == contact.id)
    return query.where((Ticket.requester_id == contact.id) | col(Ticket.id).in_(taking_part))


def get_or_create_organisation(
    session: Session, name: str, now: datetime, kind: str = COMPANY
) -> Organisation:
    return _named(session, name) or _new_organisation(session, name, kind, now)


def _named(session: Session, name: str) -> Organisation | None:
    return session.exec(select(Organisation).where(Organisation.name == name)).first()


def _new_organisation(session: Session, name: str, kind: str, now: datetime) -> Organisation:
    # A plain insert: the unit of work costs several times as much for a row written once.
    return insert_row(session, Organisation(name=name, kind=kind, created_at=now), track=True)


def personal_organisation(session: Session, address: str, now: datetime) -> Organisation:
    """A new organisation of one sender, named after their address: nobody's colleague.
    Not after their display name: it is the sender's to choose ("support@example.com"
    <evil@…>), and staff read the organisation's name as the customer's."""
    label = address
    taken = _named(session, label)
    if taken is None:
        return _new_organisation(session, label, PERSONAL, now)
    if taken.kind != PERSONAL or contacts_in(session, taken.id or 0):
        # The name is taken (a company called so, or an address that changed hands).
        return _new_organisation(session, f"{label} #{_count(session) + 1}", PERSONAL, now)
    return taken


def pool_organisation(session: Session, name: str, now: datetime) -> Organisation:
    """The pool of unassigned senders; the configuration names it, so it is a pool."""
    org = get_or_create_organisation(session, name, now, POOL)
    if org.kind != POOL:
        org.kind = POOL
        session.add(org)
    return org


def contacts_in(session: Session, organisation_id: int) -> list[Contact]:
    query = select(Contact).where(Contact.organisation_id == organisation_id)
    return list(session.exec(query.order_by(col(Contact.email))))


def _count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Organisation)).one())


def ensure_contact(
    session: Session,
    address: str,
    name: str,
    policy: CustomersConfig,
    now: datetime,
    language: str | None = None,
) -> Contact:
    """The contact for an address: found by address, else placed in the company that claims
    its domain, else in an organisation of its own (or the "unassigned" pool) as configured.
    Never does a sender make an organisation claim a domain."""
    address = address.lower()
    contact = contact_by_email(session, address)
    if contact is not None:
        return contact
    org = organisation_for_domain(session, domain_of(address))
    if org is None and policy.unknown_sender == "unassigned":
        org = pool_organisation(session, policy.unassigned_organisation, now)
    elif org is None:
        org = personal_organisation(session, address, now)
    hold(session, org)
    contact = Contact(
        email=address, name=name, organisation_id=org.id, language=language, created_at=now
    )
    insert_row(session, contact, track=True)  # as _new_organisation
    remembered(session, Contact.__name__)[address] = contact
    return contact


def is_known_customer(session: Session, address: str) -> bool:
    """Whether the reject policy lets this sender open a ticket."""
    if contact_by_email(session, address.lower()) is not None:
        return True
    return organisation_for_domain(session, domain_of(address)) is not None


# --- support-hour contingent ----------------------------------------------------------------


class ContingentError(ValueError):
    """Why a contingent amount or organisation cannot be used, worded for the operator."""


@dataclass(frozen=True)
class ContingentStatus:
    """An organisation's support time in minutes: bought, used by billable time, left."""

    total: int
    used: int

    @property
    def left(self) -> int:
        return self.total - self.used


def parse_amount(text: str) -> int:
    """A signed amount of support time in minutes: +10h, 10h, 90m, 1h30, -2h (a correction).
    The same parser and wording as `#time`: a bare number is refused there and here, since 10
    minutes when 10 hours were meant is a costly slip."""
    try:
        minutes, rest = parse_signed_duration(text)
    except ValueError:
        raise ContingentError(duration_problem(text)) from None
    if rest:
        raise ContingentError(duration_problem(text))
    if minutes == 0:
        raise ContingentError(f'"{text}" is zero: nothing to add')
    return minutes


def find_organisation(session: Session, name: str) -> Organisation:
    """The organisation by exact name, else by a case-insensitive name if only one matches."""
    org = session.exec(select(Organisation).where(Organisation.name == name)).first()
    if org is not None:
        return org
    query = select(Organisation).where(func.lower(Organisation.name) == name.lower())
    found = list(session.exec(query))
    if len(found) != 1:
        raise ContingentError(f"no organisation {name!r}")
    return found[0]


def billable_minutes(session: Session, organisation_id: int, before: datetime | None = None) -> int:
    """Billable time on the organisation's tickets, all of it or what was booked before a moment."""
    return billable_minutes_of(session, [organisation_id], before).get(organisation_id, 0)


def billable_minutes_of(
    session: Session, organisation_ids: Sequence[int], before: datetime | None = None
) -> dict[int, int]:
    """billable_minutes of several organisations by one query (those with none left out)."""
    query = (
        select(Ticket.organisation_id, func.sum(TimeEntry.minutes))
        .join(Ticket, col(Ticket.id) == col(TimeEntry.ticket_id))
        .where(col(Ticket.organisation_id).in_(organisation_ids), col(TimeEntry.billable).is_(True))
        .group_by(col(Ticket.organisation_id))
    )
    if before is not None:
        query = query.where(col(TimeEntry.created_at) < before)
    return {org or 0: int(minutes or 0) for org, minutes in session.exec(query)}


def contingent_minutes(
    session: Session, organisation_id: int, before: datetime | None = None
) -> int:
    """The sum of the organisation's contingent rows, all of them or those before a moment."""
    return contingent_minutes_of(session, [organisation_id], before).get(organisation_id, 0)


def contingent_minutes_of(
    session: Session, organisation_ids: Sequence[int], before: datetime | None = None
) -> dict[int, int]:
    """contingent_minutes of several organisations by one query (those with none left out)."""
    query = (
        select(Contingent.organisation_id, func.sum(Contingent.minutes))
        .where(col(Contingent.organisation_id).in_(organisation_ids))
        .group_by(col(Contingent.organisation_id))
    )
    if before is not None:
        query = query.where(col(Contingent.created_at) < before)
    return {org: int(minutes or 0) for org, minutes in session.exec(query)}


def contingent_status(session: Session, org: Organisation) -> ContingentStatus:
    return ContingentStatus(total=org.support_minutes, used=billable_minutes(session, org.id or 0))


def contingent_history(session: Session, org: Organisation) -> list[Contingent]:
    query = (
        select(Contingent)
        .where(Contingent.organisation_id == org.id)
        .order_by(col(Contingent.created_at), col(Contingent.id))
    )
    return list(session.exec(query))


def add_contingent(
    session: Session, org: Organisation, minutes: int, note: str, actor: str, now: datetime
) -> Contingent:
    """Record a package (or a correction) and set support_minutes to the sum of all rows,
    in the caller's transaction so the row and the sum are never seen apart."""
    # Lock the organisation first: two top-ups at once must not both compute the sum
    # without the other's row (PostgreSQL; SQLite writers are serialised anyway).
    locked = session.exec(
        select(Organisation).where(Organisation.id == org.id).with_for_update()
    ).one()
    row = Contingent(
        organisation_id=locked.id or 0, minutes=minutes, note=note, actor=actor, created_at=now
    )
    session.add(row)
    session.flush()
    locked.support_minutes = contingent_minutes(session, locked.id or 0)
    session.add(locked)
    session.flush()
    return row


def _contingent_row(row: Contingent, timezone: ZoneInfo) -> dict[str, object]:
    return {
        "date": aware(row.created_at).astimezone(timezone).strftime("%Y-%m-%d"),
        "created_at": aware(row.created_at).isoformat(),
        "minutes": row.minutes,
        "note": row.note,
        "actor": row.actor,
    }


def contingent_view(
    session: Session, org: Organisation, timezone: str, added: Contingent | None = None
) -> dict[str, object]:
    """History and standing of an organisation's contingent, minutes as integers, dates on the
    desk's calendar; with `added`, the row just recorded as well."""
    zone = ZoneInfo(timezone)
    status = contingent_status(session, org)
    view: dict[str, object] = {
        "organisation": org.name,
        "history": [_contingent_row(r, zone) for r in contingent_history(session, org)],
        "total_minutes": status.total,
        "used_minutes": status.used,
        "left_minutes": status.left,
    }
    if added is not None:
        view["added"] = _contingent_row(added, zone)
    return view
