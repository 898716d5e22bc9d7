"""Sender to agent or contact and organisation; the unknown-sender policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from mailgate.config import CustomersConfig
from mailgate.models import Agent, Contact, Organisation, OrganisationDomain


@dataclass(frozen=True)
class Sender:
    """Who wrote a mail, as far as the database knows before anything is written."""

    address: str
    agent: Agent | None = None
    contact: Contact | None = None

    @property
    def is_agent(self) -> bool:
        return self.agent is not None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def identify(session: Session, address: str) -> Sender:
    address = address.lower()
    agent = session.exec(select(Agent).where(Agent.email == address, Agent.active)).first()
    contact = session.exec(select(Contact).where(Contact.email == address)).first()
    return Sender(address=address, agent=agent, contact=contact)


def organisation_for_domain(session: Session, domain: str) -> Organisation | None:
    claim = session.get(OrganisationDomain, domain.lower())
    return session.get(Organisation, claim.organisation_id) if claim else None


def get_or_create_organisation(session: Session, name: str, now: datetime) -> Organisation:
    org = session.exec(select(Organisation).where(Organisation.name == name)).first()
    if org is None:
        org = Organisation(name=name, created_at=now)
        session.add(org)
        session.flush()
    return org


def _new_organisation_name(address: str, name: str, policy: CustomersConfig) -> str:
    domain = domain_of(address)
    if domain and domain not in policy.public_domains:
        return domain
    # A free-mail sender is an organisation of one; its name must still be unique.
    return f"{name} <{address}>" if name else address


def ensure_contact(
    session: Session,
    address: str,
    name: str,
    policy: CustomersConfig,
    now: datetime,
    language: str | None = None,
) -> Contact:
    """The contact for an address: found by address, else placed in the organisation that
    claims its domain, else in a new (or the "unassigned") organisation as configured."""
    address = address.lower()
    contact = session.exec(select(Contact).where(Contact.email == address)).first()
    if contact is not None:
        return contact
    org = organisation_for_domain(session, domain_of(address))
    if org is None:
        org_name = (
            policy.unassigned_organisation
            if policy.unknown_sender == "unassigned"
            else _new_organisation_name(address, name, policy)
        )
        org = get_or_create_organisation(session, org_name, now)
        if org_name == domain_of(address):
            session.add(OrganisationDomain(domain=org_name, organisation_id=org.id))
    contact = Contact(
        email=address, name=name, organisation_id=org.id, language=language, created_at=now
    )
    session.add(contact)
    session.flush()
    return contact


def is_known_customer(session: Session, address: str) -> bool:
    """Whether the reject policy lets this sender open a ticket."""
    if session.exec(select(Contact.id).where(Contact.email == address.lower())).first():
        return True
    return organisation_for_domain(session, domain_of(address)) is not None
