"""`tickets show`: one ticket found by its number, with who works on it, its mails and history."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from mailgate.desk import lookups
from mailgate.reading import tags
from mailgate.reports.listing import iso, ticket_dict
from mailgate.reports.mail_rows import article_dict
from mailgate.store.models import Agent, Article, Contact, Event, Organisation, Ticket


def find_ticket(session: Session, prefix: str, cid: str) -> Ticket | None:
    """A ticket by `CID-1042`, `[CID-1042]` or plain `1042`."""
    text = cid.strip()
    number = int(text) if text.isdigit() else tags.find_number(f"[{text.strip('[]')}]", prefix)
    if number is None:
        return None
    return session.exec(select(Ticket).where(Ticket.number == number)).first()


def ticket_detail(session: Session, prefix: str, ticket: Ticket) -> dict[str, Any]:
    """`tickets show`: the list row's fields, who works on it by name, the time booked, the
    hold date, then the articles and the events."""
    tid = ticket.id or 0
    org = session.get(Organisation, ticket.organisation_id)
    requester = session.get(Contact, ticket.requester_id)
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    data = ticket_dict(
        ticket,
        prefix,
        {ticket.organisation_id: org.name} if org else {},
        {ticket.requester_id: requester.email} if requester else {},
        {assignee.id or 0: assignee.email} if assignee else {},
    )
    further = lookups.further_agents(session, [tid]).get(tid, [])
    booked = lookups.minutes(session, [tid])
    data.update(
        linked_ticket=lookups.linked(session, prefix, [ticket]).get(tid),
        followed_by=_followed_by(session, prefix, tid),
        references=lookups.references(session, [tid]).get(tid, []),
        assignee_name=assignee.name if assignee else None,
        agents=[a.email for a in further],
        further_agents=[{"email": a.email, "name": a.name} for a in further],
        hold_until=iso(ticket.hold_until),
        time={
            "billable_minutes": booked.get((tid, True), 0),
            "free_minutes": booked.get((tid, False), 0),
        },
    )
    articles = session.exec(
        select(Article).where(Article.ticket_id == tid).order_by(col(Article.id))
    ).all()
    data["articles"] = [article_dict(session, a) for a in articles]
    data["events"] = _events(session, tid)
    return data


def _followed_by(session: Session, prefix: str, ticket_id: int) -> list[str]:
    """The tickets that follow this one (a reply came after it was closed for long)."""
    query = select(Ticket.number).where(Ticket.linked_ticket_id == ticket_id)
    return [tags.cid(prefix, n) for n in session.exec(query.order_by(col(Ticket.number)))]


def _events(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    """The ticket's history, oldest first; an agent's address also by the agent's name."""
    events = list(
        session.exec(select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id)))
    )
    actors = {e.actor for e in events}
    query = select(Agent.email, Agent.name).where(col(Agent.email).in_(actors))
    names = dict(session.exec(query).all())
    return [
        {
            "actor": e.actor,
            "actor_name": names.get(e.actor) or None,
            "action": e.action,
            "detail": e.detail,
            "at": iso(e.created_at),
        }
        for e in events
    ]
