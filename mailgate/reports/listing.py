"""`tickets list`: a ticket as every listing names it, the rows of the JSON contract, CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any

from sqlmodel import Session, col, select

from mailgate.config import Config
from mailgate.desk import lookups, sla
from mailgate.reading import tags
from mailgate.reports.filters import TicketFilter
from mailgate.reports.selection import select_tickets
from mailgate.store.models import Agent, Contact, Organisation, Ticket


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _names(session: Session, model: Any, attr: str, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(model.id, getattr(model, attr)).where(col(model.id).in_(ids)))
    return {row_id: value for row_id, value in rows}


def ticket_fields(
    t: Ticket, prefix: str, orgs: dict[int, str], contacts: dict[int, str], agents: dict[int, str]
) -> dict[str, Any]:
    """What a ticket is and whose, as every listing and export names it: the organisation by
    name, the requester and the assignee by address, from the given look-ups (by id)."""
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
    }


def ticket_dict(
    t: Ticket, prefix: str, orgs: dict[int, str], contacts: dict[int, str], agents: dict[int, str]
) -> dict[str, Any]:
    return {
        **ticket_fields(t, prefix, orgs, contacts, agents),
        "billable": t.billable,
        "source": t.source,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "last_action": {"by": t.last_action_by, "at": iso(t.last_action_at)},
        "linked_ticket": None,
    }


def ticket_rows(
    session: Session, cfg: Config, flt: TicketFilter, now: datetime
) -> list[dict[str, Any]]:
    """`tickets list` rows: the JSON contract's keys plus `sla`."""
    prefix, calendar = cfg.tickets.prefix, sla.Calendar.of(cfg)
    rows: list[dict[str, Any]] = []
    for tickets in select_tickets(session, flt, cfg, now):
        orgs = _names(session, Organisation, "name", {t.organisation_id for t in tickets})
        contacts = _names(session, Contact, "email", {t.requester_id for t in tickets})
        agents = _names(session, Agent, "email", {t.assignee_id for t in tickets if t.assignee_id})
        refs = lookups.references(session, [t.id or 0 for t in tickets])
        linked = lookups.linked(session, prefix, tickets)
        for t in tickets:
            row = ticket_dict(t, prefix, orgs, contacts, agents)
            row["linked_ticket"] = linked.get(t.id or 0)
            row["references"] = refs.get(t.id or 0, [])
            target = sla.first_response(cfg, calendar, t, now)
            row["sla"] = {"due_at": iso(target.due_at), "breached": target.breached}
            rows.append(row)
    return rows


# `tickets list --format csv`: the row's flat fields; nested ones split into columns.
TICKET_CSV_FIELDS = (
    "cid",
    "number",
    "subject",
    "status",
    "priority",
    "type",
    "category",
    "customer",
    "requester",
    "assignee",
    "billable",
    "source",
    "created_at",
    "updated_at",
    "last_action_by",
    "last_action_at",
    "linked_ticket",
    "sla_due_at",
    "sla_breached",
    "references",
)


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A list row with `last_action` and `sla` split into plain columns."""
    flat = {k: v for k, v in row.items() if k not in ("last_action", "sla")}
    flat["last_action_by"] = row["last_action"]["by"]
    flat["last_action_at"] = row["last_action"]["at"]
    flat["sla_due_at"] = row["sla"]["due_at"]
    flat["sla_breached"] = row["sla"]["breached"]
    flat["references"] = lookups.REFERENCE_SEPARATOR.join(row["references"])
    return flat


def write_csv(stream: IO[str], fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> int:
    """One header row, then the rows; None as empty. Returns the number of rows written."""
    writer = csv.DictWriter(stream, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        count += 1
    return count
