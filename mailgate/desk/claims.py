"""The operator's word on customers: which company claims a mail domain, who belongs where."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from mailgate.config import CustomersConfig
from mailgate.desk.customers import (
    ContingentError,
    contact_by_email,
    find_organisation,
    get_or_create_organisation,
)
from mailgate.desk.freemail import is_public_domain
from mailgate.desk.unverified import is_unverified_sender
from mailgate.store.models import COMPANY, Contact, Organisation, OrganisationDomain, Ticket

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class ClaimError(ValueError):
    """Why a claim or a move cannot be made, worded for the operator."""


def checked_domain(domain: str, policy: CustomersConfig, force: bool) -> str:
    """The domain in lower case, if a company may claim it: a public provider's only when
    forced, since everyone with an address there would become that company's."""
    name = domain.strip().lower().rstrip(".").removeprefix("@")
    if not _DOMAIN.match(name):
        raise ClaimError(f"{domain!r} is not a mail domain")
    if is_public_domain(name, policy.public_domains) and not force:
        raise ClaimError(
            f"{name} is a public mail provider: anyone may have an address there, and all"
            " of them would see this organisation's tickets (--force claims it all the same)"
        )
    return name


def company(session: Session, name: str, now: datetime) -> Organisation:
    """The company of this name (case-insensitive when that is unambiguous), made if none.
    A personal organisation or the pool is no company: its members are strangers."""
    try:
        org = find_organisation(session, name)
    except ContingentError:
        org = get_or_create_organisation(session, name, now, COMPANY)
    if org.kind != COMPANY:
        raise ClaimError(f"{org.name!r} is a {org.kind} organisation, not a company")
    return org


def claim(
    session: Session, name: str, domain: str, policy: CustomersConfig, now: datetime, force: bool
) -> Organisation:
    """Let a company claim a domain: its unknown senders become the company's contacts."""
    domain = checked_domain(domain, policy, force)
    org = company(session, name, now)
    held = session.get(OrganisationDomain, domain)
    if held is not None and held.organisation_id != org.id:
        other = session.get(Organisation, held.organisation_id)
        raise ClaimError(f"{domain} is claimed by {other.name if other else '?'} already")
    if held is None:
        session.add(OrganisationDomain(domain=domain, organisation_id=org.id or 0))
        session.flush()
    return org


def unclaim(session: Session, domain: str) -> Organisation | None:
    """Take a claim back; the contacts it brought in stay where they are."""
    held = session.get(OrganisationDomain, domain.strip().lower())
    if held is None:
        raise ClaimError(f"{domain.strip().lower()} is claimed by no organisation")
    session.delete(held)
    session.flush()
    return session.get(Organisation, held.organisation_id)


@dataclass(frozen=True)
class Moved:
    contact: Contact
    organisation: Organisation
    tickets: int  # the contact's own tickets that came along


def move(session: Session, address: str, name: str, now: datetime) -> Moved:
    """Put a contact in a company. Their own tickets come along from an organisation of
    their own or the pool; from another company they stay (its hours paid for them)."""
    contact = contact_by_email(session, address.strip().lower())
    if contact is None:
        raise ClaimError(f"no contact {address.strip().lower()}")
    if is_unverified_sender(contact):
        # Moved, every ticket it stands in for would become that company's at once.
        raise ClaimError(
            f"{contact.email} stands for mail whose From named nobody for sure: "
            "set each ticket's customer with #customer"
        )
    org = company(session, name, now)
    return Moved(contact, org, move_contact(session, contact, org))


def move_contact(session: Session, contact: Contact, org: Organisation) -> int:
    """Put a contact in an organisation; how many of their tickets came along."""
    old = session.get(Organisation, contact.organisation_id)
    moved = 0
    if old is not None and old.kind != COMPANY and old.id != org.id:
        statement = (
            update(Ticket)
            .where(col(Ticket.requester_id) == contact.id, col(Ticket.organisation_id) == old.id)
            .values(organisation_id=org.id)
        )
        result = session.connection().execute(statement)
        moved = int(result.rowcount or 0)
    contact.organisation_id = org.id or 0
    session.add(contact)
    session.flush()
    return moved
