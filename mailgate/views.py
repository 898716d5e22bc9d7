"""Read-only queries that turn stored rows into the JSON-ready shapes of the CLI contract."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Select, and_, false, func, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, UTCDateTime, col, select

from mailgate import lookups, sla, tags
from mailgate.agents import find_agent
from mailgate.config import Config, parse_duration
from mailgate.customers import ContingentError, find_organisation
from mailgate.intake.spool import stored_raw
from mailgate.lifecycle import Refused, resolve_agent
from mailgate.models import (
    PRIORITIES,
    STATUSES,
    TYPES,
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
    TicketReference,
)
from mailgate.moments import local_midnight
from mailgate.retention import removed_note

# `tickets list --sort` keys and the column each orders by; the number breaks ties.
SORTS: dict[str, Any] = {
    "number": Ticket.number,
    "created": Ticket.created_at,
    "updated": Ticket.updated_at,
    "priority": Ticket.priority,
    "last-action": Ticket.last_action_at,
}
WAITING = ("us", "customer")


class FilterError(ValueError):
    """A filter value that makes no sense; `option` names the command-line option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


@dataclass(frozen=True)
class TicketFilter:
    status: tuple[str, ...] = ()
    # An agent address (assignee or further agent), or "none" for unassigned tickets.
    assignee: str | None = None
    category: str | None = None
    customer: str | None = None  # organisation name
    priority: str | None = None
    type: str | None = None
    billable: bool | None = None
    created_from: date | None = None  # local days in [tickets] timezone, both ends inclusive
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    waiting: str | None = None  # "us" or "customer"
    text: str | None = None  # case-insensitive substring of the subject or a reference
    sla_breached: bool = False
    sort: str = "number"
    desc: bool = False
    limit: int | None = None


def _day(option: str, text: str | None) -> date | None:
    if not text:
        return None
    try:
        # Strictly YYYY-MM-DD: fromisoformat alone would also take 20261101 and week dates.
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(option, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _choice(option: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise FilterError(option, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def make_filter(
    *,
    status: tuple[str, ...] = (),
    assignee: str | None = None,
    category: str | None = None,
    customer: str | None = None,
    priority: str | None = None,
    type: str | None = None,
    billable: bool | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    updated_from: str | None = None,
    updated_to: str | None = None,
    waiting: str | None = None,
    text: str | None = None,
    sla_breached: bool = False,
    sort: str = "number",
    desc: bool = False,
    limit: int | str | None = None,
) -> TicketFilter:
    """A TicketFilter from the options as typed; FilterError names the first bad one."""
    statuses = tuple(s.strip().lower() for item in status for s in item.split(",") if s.strip())
    for value in statuses:
        _choice("--status", value, STATUSES)
    if limit is not None and not str(limit).isdigit():
        raise FilterError("--limit", f"{limit!r} is not a number of tickets")
    flt = TicketFilter(
        status=statuses,
        assignee=assignee.strip().lower() if assignee else None,
        category=category,
        customer=customer,
        priority=_choice("--priority", priority.upper() if priority else None, PRIORITIES),
        type=_choice("--type", type.lower() if type else None, TYPES),
        billable=billable,
        created_from=_day("--created-from", created_from),
        created_to=_day("--created-to", created_to),
        updated_from=_day("--updated-from", updated_from),
        updated_to=_day("--updated-to", updated_to),
        waiting=_choice("--waiting", waiting.lower() if waiting else None, WAITING),
        text=text or None,
        sla_breached=sla_breached,
        sort=_choice("--sort", sort, tuple(SORTS)) or "number",
        desc=desc,
        limit=None if limit is None else int(limit),
    )
    for first, last, option in (
        (flt.created_from, flt.created_to, "--created-to"),
        (flt.updated_from, flt.updated_to, "--updated-to"),
    ):
        if first and last and last < first:
            raise FilterError(option, f"{last} is before the start {first}")
    return flt


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _names(session: Session, model: Any, attr: str, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(model.id, getattr(model, attr)).where(col(model.id).in_(ids)))
    return {row_id: value for row_id, value in rows}


class seconds_between(FunctionElement[float]):
    """Seconds from the first datetime expression to the second, on either database."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between_pg(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    # julianday is a float of days: rounded to whole milliseconds so that an answer exactly
    # at the target is not counted late by a rounding error.
    return (
        f"(round((julianday({compiler.process(end, **kw)}) - "
        f"julianday({compiler.process(start, **kw)})) * 86400000.0) / 1000.0)"
    )


def _between(column: Any, first: date | None, last: date | None, zone: ZoneInfo) -> list[Any]:
    conditions = []
    if first:
        conditions.append(column >= local_midnight(first, zone))
    if last:
        conditions.append(column < local_midnight(last + timedelta(days=1), zone))
    return conditions


def _answered_or_now(now: datetime) -> Any:
    return func.coalesce(
        col(Ticket.first_response_at), col(Ticket.resolved_at), literal(now, UTCDateTime())
    )


def _sla_breached(cfg: Config, now: datetime) -> Any:
    """Tickets past their first-response target. Clock-time targets are exact here; a target
    in business days is bounded below (n business days take at least n clock days) and the
    rows that pass are checked exactly by `sla.first_response` (see `needs_exact_sla`)."""
    elapsed = seconds_between(col(Ticket.created_at), _answered_or_now(now))
    conditions = []
    for priority, target in cfg.sla.first_response.items():
        if not target:
            continue
        amount, unit = parse_duration(target)
        # n business days are at least n local days; across a DST change that may be an hour
        # short in UTC, hence the margin (the exact check follows).
        bound = amount * 86400 - 7200 if unit == "bd" else amount * _UNIT_SECONDS[unit]
        conditions.append(and_(col(Ticket.priority) == priority, elapsed > bound))
    return or_(*conditions) if conditions else false()


_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def needs_exact_sla(flt: TicketFilter, cfg: Config) -> bool:
    """Whether the SQL for --sla-breached is only a bound and rows need `sla.first_response`."""
    return flt.sla_breached and any(
        target and parse_duration(target)[1] == "bd" for target in cfg.sla.first_response.values()
    )


def _text_matches(text: str) -> Any:
    """The subject, or one of the ticket's reference numbers, contains the text (any case)."""
    referenced = select(TicketReference.ticket_id).where(
        col(TicketReference.reference).icontains(text, autoescape=True)
    )
    return or_(col(Ticket.subject).icontains(text, autoescape=True), col(Ticket.id).in_(referenced))


def ticket_query(flt: TicketFilter, cfg: Config, now: datetime) -> Select[Any]:
    """The tickets a filter selects, sorted, as one SQL select (the same for list and export).
    Every condition runs in the database; only a business-day SLA needs a check afterwards."""
    zone = ZoneInfo(cfg.tickets.timezone)
    query = select(Ticket)
    conditions: list[Any] = []
    if flt.status:
        conditions.append(col(Ticket.status).in_(flt.status))
    if flt.priority:
        conditions.append(col(Ticket.priority) == flt.priority)
    if flt.type:
        conditions.append(col(Ticket.type) == flt.type)
    if flt.category:
        # lower() is Unicode-aware on both databases (see store: SQLite gets Python's).
        conditions.append(func.lower(col(Ticket.category)) == flt.category.lower())
    if flt.billable is not None:
        conditions.append(col(Ticket.billable) == flt.billable)
    if flt.customer:
        orgs = select(Organisation.id).where(Organisation.name == flt.customer)
        conditions.append(col(Ticket.organisation_id).in_(orgs))
    if flt.assignee == "none":
        conditions.append(col(Ticket.assignee_id).is_(None))
    elif flt.assignee:
        # The agent's tickets: assigned to them, or with them as a further agent.
        agents = select(Agent.id).where(Agent.email == flt.assignee)
        further = select(TicketAgent.ticket_id).where(col(TicketAgent.agent_id).in_(agents))
        conditions.append(or_(col(Ticket.assignee_id).in_(agents), col(Ticket.id).in_(further)))
    conditions += _between(col(Ticket.created_at), flt.created_from, flt.created_to, zone)
    conditions += _between(col(Ticket.updated_at), flt.updated_from, flt.updated_to, zone)
    if flt.waiting:
        # Waiting for us: the customer spoke last; for the customer: staff did.
        last_by = "customer" if flt.waiting == "us" else "staff"
        conditions += [col(Ticket.status) != "closed", col(Ticket.last_action_by) == last_by]
    if flt.text:
        conditions.append(_text_matches(flt.text))
    if flt.sla_breached:
        conditions.append(_sla_breached(cfg, now))
    if conditions:
        query = query.where(and_(*conditions))
    key, number = SORTS[flt.sort], col(Ticket.number)
    query = query.order_by(*((key.desc(), number.desc()) if flt.desc else (key, number)))
    if flt.limit is not None and not needs_exact_sla(flt, cfg):
        query = query.limit(flt.limit)
    return query


def select_tickets(
    session: Session, flt: TicketFilter, cfg: Config, now: datetime, batch: int = 1000
) -> Iterator[list[Ticket]]:
    """The filter's tickets in batches, streamed: never the whole table in memory."""
    calendar = sla.Calendar.of(cfg)
    exact, left = needs_exact_sla(flt, cfg), flt.limit
    result = session.exec(ticket_query(flt, cfg, now).execution_options(yield_per=batch))
    try:
        for part in result.partitions():
            tickets = list(part)
            if exact:
                tickets = [t for t in tickets if sla.first_response(cfg, calendar, t, now).breached]
            if left is not None:
                tickets, left = tickets[:left], left - min(left, len(tickets))
            if tickets:
                yield tickets
            if left == 0:
                break
    finally:
        # A limit reached early leaves the (server-side, on PostgreSQL) cursor open otherwise.
        result.close()


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


def checked(session: Session, flt: TicketFilter) -> TicketFilter:
    """The filter with its organisation found as `report time --customer` finds one (exact,
    else any case if only one fits) and its agent resolved to an address as `#assign`
    resolves one (address, name, first name, local part); FilterError if not."""
    if flt.customer:
        try:
            flt = replace(flt, customer=find_organisation(session, flt.customer).name)
        except ContingentError:
            raise FilterError("--customer", f"no organisation named {flt.customer!r}") from None
    if flt.assignee in (None, "none"):
        return flt
    # By address any agent, one who has left included: their tickets are to be handed on.
    agent = find_agent(session, flt.assignee)
    if agent is None:
        try:
            agent = resolve_agent(session, flt.assignee)
        except Refused as exc:
            raise FilterError("--assignee", str(exc)) from None
    return replace(flt, assignee=agent.email)


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


def intake_dict(session: Session, row: Intake, with_headers: bool = False) -> dict[str, Any]:
    """A stored message as listed; its bytes are read only for what processing did not note
    (a message quarantined before it parsed) and for its headers."""
    sender, subject = (row.from_addr, row.subject)
    unnoted = not sender and not subject and row.removed_at is None
    kept = row.removed_at is None
    raw = stored_raw(session, row.id or 0) if kept and (unnoted or with_headers) else b""
    if unnoted:
        sender, subject = _peek(raw)
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
    if row.removed_at is not None:
        data["removed"] = removed_note(row.removed_at, row.removed_by)
    if with_headers:
        data["headers"] = data.get("removed") or (
            raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
        )
    return data


def intake_rows(session: Session, status: str) -> list[dict[str, Any]]:
    query = select(Intake).where(Intake.status == status).order_by(col(Intake.id))
    return [intake_dict(session, row) for row in session.exec(query)]


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
            "removed": removed_note(o.removed_at, o.removed_by) if o.removed_at else None,
        }
        for o in session.exec(query)
    ]
