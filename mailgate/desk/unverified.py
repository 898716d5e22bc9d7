"""The unverified sender: whom a ticket is for when its mail's From names no single clean
address (parse.AMBIGUOUS_FROM). One shared contact stands in for every such mail. Its
"address" has no @, so no From can ever be taken for it and no mail can go to it, and its
organisation is nobody's: no customer's list, view or colleague sees these tickets until
staff set the real customer (`#customer`)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from mailgate.config import CustomersConfig
from mailgate.desk.customers import contact_by_email, ensure_contact, hold, organisation
from mailgate.reading.parse import ParsedMail
from mailgate.store.models import UNVERIFIED, Article, Contact, Organisation, Ticket

ADDRESS = "unverified-sender"  # no "@": parse never gives such a sender address
NAME = "Unverified sender"
ORGANISATION = "Unverified senders"
REASON = "unverified sender"  # the outcome `mailgate ingest` prints beside the ticket
NOTE = "unverified sender: From names no single clean address: "
# A tagged mail from someone the ticket does not know (a stranger, or its customer writing
# from another address): kept as an internal note; staff are told, nobody else.
STRANGER = "unverified sender: not part of this ticket"
# A From header can be 64 KiB; staff need to recognise it, not to read all of it.
_SHOWN = 1000


def from_note(mail: ParsedMail) -> str:
    """The article's note: every From header as received (decoded), on one line."""
    text = " / ".join(re.sub(r"\s+", " ", value).strip() for value in mail.from_headers)
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "…"
    return NOTE + text


def is_unverified_sender(contact: Contact | None) -> bool:
    return contact is not None and contact.email == ADDRESS


def unverified_contact(session: Session, now: datetime) -> Contact:
    """The shared contact, made with its organisation the first time it is needed. A second
    transaction making it at the same time fails on the unique address and is tried again
    (pipeline.CONFLICT_ATTEMPTS): then it finds this one."""
    contact = contact_by_email(session, ADDRESS)
    if contact is not None:
        return contact
    org = session.exec(select(Organisation).where(Organisation.kind == UNVERIFIED)).first()
    if org is None:
        org = Organisation(name=_free_name(session), kind=UNVERIFIED, created_at=now)
        session.add(org)
        session.flush()
    hold(session, org)
    contact = Contact(email=ADDRESS, name=NAME, organisation_id=org.id or 0, created_at=now)
    session.add(contact)
    session.flush()
    return contact


def _free_name(session: Session) -> str:
    """The organisation's name; numbered if an operator named a company so already."""
    names = set(
        session.exec(
            select(Organisation.name).where(col(Organisation.name).startswith(ORGANISATION))
        )
    )
    name, n = ORGANISATION, 1
    while name in names:
        n += 1
        name = f"{ORGANISATION} #{n}"
    return name


def set_customer(
    session: Session,
    ticket: Ticket,
    address: str,
    name: str,
    policy: CustomersConfig,
    now: datetime,
) -> Contact:
    """`#customer` on an unverified sender's ticket: from now on it is that customer's, in
    their organisation, and mail about it goes to them."""
    contact = ensure_contact(session, address, name, policy, now)
    organisation(session, contact.organisation_id)
    ticket.requester_id = contact.id or 0
    ticket.organisation_id = contact.organisation_id
    ticket.updated_at = now
    session.add(ticket)
    return contact


def from_text(session: Session, ticket: Ticket) -> str:
    """The From the ticket's first mail came with, as its note keeps it."""
    query = select(Article.note).where(Article.ticket_id == ticket.id).order_by(col(Article.id))
    first = session.exec(query.limit(1)).first() or ""
    return first.partition(NOTE)[2] if NOTE in first else ""
