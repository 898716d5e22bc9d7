"""What the desk knows of its customers, for `customers list|show`: read only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.desk.customers import contacts_in, contingent_status, find_organisation
from mailgate.moments import hhmm
from mailgate.store.models import (
    UNVERIFIED,
    Agent,
    Contact,
    Organisation,
    OrganisationDomain,
    Ticket,
)


def _domains(session: Session) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for claim in session.exec(select(OrganisationDomain).order_by(col(OrganisationDomain.domain))):
        found.setdefault(claim.organisation_id, []).append(claim.domain)
    return found


def _contact_counts(session: Session) -> dict[int, int]:
    query = select(Contact.organisation_id, func.count()).group_by(col(Contact.organisation_id))
    return {org_id: int(n) for org_id, n in session.exec(query)}


def _agent_email(session: Session, agent_id: int | None) -> str | None:
    agent = session.get(Agent, agent_id) if agent_id is not None else None
    return agent.email if agent else None


def _summary(
    session: Session, org: Organisation, domains: list[str], contacts: int
) -> dict[str, Any]:
    hours = contingent_status(session, org)
    return {
        "name": org.name,
        "kind": org.kind,
        "domains": domains,
        "contacts": contacts,
        "responsible_agent": _agent_email(session, org.responsible_agent_id),
        "hours_total": hhmm(hours.total),
        "hours_used": hhmm(hours.used),
        "hours_left": hhmm(hours.left),
    }


def organisations(session: Session, kind: str | None = None) -> list[dict[str, Any]]:
    """Every customer organisation (of one kind, if given) by name: kind, claimed domains,
    number of contacts, contingent. The unverified senders' is no customer's
    (mailgate.unverified)."""
    domains, counts = _domains(session), _contact_counts(session)
    query = select(Organisation).where(Organisation.kind != UNVERIFIED)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    query = query.order_by(col(Organisation.name))
    return [
        _summary(session, org, domains.get(org.id or 0, []), counts.get(org.id or 0, 0))
        for org in session.exec(query)
    ]


def _open_tickets(session: Session, contact: Contact) -> int:
    query = select(func.count()).where(Ticket.requester_id == contact.id, Ticket.status != "closed")
    return int(session.exec(query).one())


def organisation(session: Session, name: str) -> dict[str, Any]:
    """One organisation (found as `customers contingent` finds it) with its contacts."""
    org = find_organisation(session, name)
    members = contacts_in(session, org.id or 0)
    view = _summary(session, org, _domains(session).get(org.id or 0, []), len(members))
    view["contacts"] = [
        {
            "email": c.email,
            "name": c.name,
            "language": c.language,
            "failing": c.failing,
            "opted_out": c.opted_out,
            "open_tickets": _open_tickets(session, c),
        }
        for c in members
    ]
    return view
