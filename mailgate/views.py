"""Read-only queries that turn stored rows into the JSON-ready shapes of the CLI contract."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlmodel import Session, col, select

from mailgate import tags
from mailgate.models import (
    Agent,
    Article,
    Attachment,
    Contact,
    Event,
    Intake,
    Organisation,
    Outbox,
    Ticket,
    TicketAgent,
)


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    assignee: str | None = None
    category: str | None = None
    customer: str | None = None
    priority: str | None = None


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _names(session: Session, model: Any, attr: str, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(model.id, getattr(model, attr)).where(col(model.id).in_(ids)))
    return {row_id: value for row_id, value in rows}


def ticket_rows(session: Session, prefix: str, flt: TicketFilter) -> list[dict[str, Any]]:
    query = select(Ticket).order_by(col(Ticket.number))
    if flt.status:
        query = query.where(Ticket.status == flt.status)
    if flt.priority:
        query = query.where(Ticket.priority == flt.priority.upper())
    if flt.category:
        query = query.where(Ticket.category == flt.category)
    if flt.customer:
        query = query.join(Organisation).where(Organisation.name == flt.customer)
    if flt.assignee:
        query = query.join(Agent, col(Agent.id) == col(Ticket.assignee_id)).where(
            Agent.email == flt.assignee.lower()
        )
    tickets = list(session.exec(query))
    orgs = _names(session, Organisation, "name", {t.organisation_id for t in tickets})
    contacts = _names(session, Contact, "email", {t.requester_id for t in tickets})
    agents = _names(session, Agent, "email", {t.assignee_id for t in tickets if t.assignee_id})
    return [ticket_dict(t, prefix, orgs, contacts, agents) for t in tickets]


def ticket_dict(
    t: Ticket, prefix: str, orgs: dict[int, str], contacts: dict[int, str], agents: dict[int, str]
) -> dict[str, Any]:
    return {
        "cid": tags.cid(prefix, t.number),
        "number": t.number,
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "type": t.type,
        "category": t.category,
        "customer": orgs.get(t.organisation_id),
        "requester": contacts.get(t.requester_id),
        "assignee": agents.get(t.assignee_id) if t.assignee_id else None,
        "billable": t.billable,
        "source": t.source,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "last_action": {"by": t.last_action_by, "at": iso(t.last_action_at)},
        "linked_ticket": None,
    }


def find_ticket(session: Session, prefix: str, cid: str) -> Ticket | None:
    """A ticket by `CID-1042`, `[CID-1042]` or plain `1042`."""
    text = cid.strip()
    number = int(text) if text.isdigit() else tags.find_number(f"[{text.strip('[]')}]", prefix)
    if number is None:
        return None
    return session.exec(select(Ticket).where(Ticket.number == number)).first()


def ticket_detail(session: Session, prefix: str, ticket: Ticket) -> dict[str, Any]:
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
    if ticket.linked_ticket_id:
        linked = session.get(Ticket, ticket.linked_ticket_id)
        data["linked_ticket"] = tags.cid(prefix, linked.number) if linked else None
    articles = session.exec(
        select(Article).where(Article.ticket_id == tid).order_by(col(Article.id))
    ).all()
    further = select(Agent.email).join(TicketAgent, col(TicketAgent.agent_id) == col(Agent.id))
    data["agents"] = list(session.exec(further.where(TicketAgent.ticket_id == tid)))
    data["articles"] = [article_dict(session, a) for a in articles]
    events = session.exec(select(Event).where(Event.ticket_id == tid).order_by(col(Event.id)))
    data["events"] = [
        {"actor": e.actor, "action": e.action, "detail": e.detail, "at": iso(e.created_at)}
        for e in events
    ]
    return data


def _split(addresses: str) -> list[str]:
    return [a.strip() for a in addresses.split(",") if a.strip()]


def article_dict(session: Session, a: Article) -> dict[str, Any]:
    files = session.exec(
        select(Attachment).where(Attachment.article_id == a.id).order_by(col(Attachment.id))
    )
    return {
        "id": a.id,
        "direction": a.direction,
        "from": a.from_addr,
        "from_name": a.from_name,
        "to": _split(a.to_addrs),
        "cc": _split(a.cc_addrs),
        "subject": a.subject,
        "date": iso(a.date),
        "message_id": a.message_id,
        "note": a.note,
        "text": a.text,
        "html": a.html,
        "attachments": [
            {
                "filename": f.filename,
                "content_type": f.content_type,
                "size": f.size,
                "sha256": f.sha256,
                "content_id": f.content_id,
                "inline": f.inline,
            }
            for f in files
        ],
        "created_at": iso(a.created_at),
    }


def _peek(raw: bytes) -> tuple[str, str]:
    """From and Subject of a message that may never have parsed."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw[:65536])
        return str(headers.get("from", "") or ""), str(headers.get("subject", "") or "")
    except Exception:  # a header bad enough to break even this is shown as empty
        return "", ""


def intake_dict(row: Intake, with_raw: bool = False) -> dict[str, Any]:
    sender, subject = (row.from_addr, row.subject)
    if not sender and not subject:
        sender, subject = _peek(row.raw)
    data: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "reason": row.reason,
        "received_at": iso(row.received_at),
        "size": row.size,
        "from": sender,
        "subject": subject,
        "source": row.source,
        "attempts": row.attempts,
        "message_id": row.message_id,
    }
    if with_raw:
        data["headers"] = (
            row.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
        )
    return data


def intake_rows(session: Session, status: str) -> list[dict[str, Any]]:
    query = select(Intake).where(Intake.status == status).order_by(col(Intake.id))
    return [intake_dict(row) for row in session.exec(query)]


def outbox_rows(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    query = select(Outbox).order_by(col(Outbox.id))
    if status:
        query = query.where(Outbox.status == status)
    return [
        {
            "id": o.id,
            "to": _split(o.to_addrs),
            "subject": o.subject,
            "status": o.status,
            "attempts": o.attempts,
            "template": o.template,
            "last_error": o.last_error,
            "created_at": iso(o.created_at),
            "sent_at": iso(o.sent_at),
        }
        for o in session.exec(query)
    ]
