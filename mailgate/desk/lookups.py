"""Batch look-ups for ticket views: what tickets need from other tables, one query each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.reading import tags
from mailgate.store.models import Agent, Ticket, TicketAgent, TicketReference, TimeEntry

# How a list of reference numbers is written into one CSV or spreadsheet cell.
REFERENCE_SEPARATOR = "; "


def references(session: Session, ids: Collection[int]) -> dict[int, list[str]]:
    """Each ticket's reference numbers, sorted."""
    if not ids:
        return {}
    query = (
        select(TicketReference.ticket_id, TicketReference.reference)
        .where(col(TicketReference.ticket_id).in_(ids))
        .order_by(col(TicketReference.ticket_id), col(TicketReference.reference))
    )
    found: dict[int, list[str]] = defaultdict(list)
    for ticket_id, reference in session.exec(query):
        found[ticket_id].append(reference)
    return found


def linked(session: Session, prefix: str, tickets: Iterable[Ticket]) -> dict[int, str]:
    """The tag of the closed ticket each follows from, for those that follow one."""
    pairs = {t.id or 0: t.linked_ticket_id for t in tickets if t.linked_ticket_id}
    if not pairs:
        return {}
    query = select(Ticket.id, Ticket.number).where(col(Ticket.id).in_(set(pairs.values())))
    numbers = dict(session.exec(query).all())
    return {t: tags.cid(prefix, numbers[other]) for t, other in pairs.items() if other in numbers}


def further_agents(session: Session, ids: Collection[int]) -> dict[int, list[Agent]]:
    """Each ticket's further agents (TicketAgent), by address."""
    if not ids:
        return {}
    query = (
        select(TicketAgent.ticket_id, Agent)
        .join(Agent, col(Agent.id) == col(TicketAgent.agent_id))
        .where(col(TicketAgent.ticket_id).in_(ids))
        .order_by(col(Agent.email))
    )
    found: dict[int, list[Agent]] = defaultdict(list)
    for ticket_id, agent in session.exec(query):
        found[ticket_id].append(agent)
    return found


def minutes(session: Session, ids: Collection[int]) -> dict[tuple[int, bool], int]:
    """Time booked per ticket, billable and free apart: {(ticket id, billable): minutes}."""
    if not ids:
        return {}
    query = (
        select(TimeEntry.ticket_id, TimeEntry.billable, func.sum(TimeEntry.minutes))
        .where(col(TimeEntry.ticket_id).in_(ids))
        .group_by(col(TimeEntry.ticket_id), col(TimeEntry.billable))
    )
    return {(tid, bool(billable)): int(total) for tid, billable, total in session.exec(query)}
