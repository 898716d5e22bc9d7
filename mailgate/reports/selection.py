"""The tickets a filter selects: one SQL select, run in the database and streamed in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Select, and_, false, func, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, UTCDateTime, col, select

from mailgate.config import Config, parse_duration
from mailgate.desk import sla
from mailgate.moments import local_midnight
from mailgate.reports.filters import SORTS, TicketFilter, with_found
from mailgate.store.models import OPEN_STATUSES, Agent, Organisation, Ticket, TicketAgent


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
        # Waiting for us: the customer spoke last; for the customer: staff did. The statuses
        # but closed by name: the status index finds them, `!= closed` read every ticket.
        last_by = "customer" if flt.waiting == "us" else "staff"
        conditions += [col(Ticket.status).in_(OPEN_STATUSES), col(Ticket.last_action_by) == last_by]
    if flt.text:  # what the search engine found (with_found), the other filters apply
        conditions.append(col(Ticket.id).in_(flt.found or ()))
    if flt.sla_breached:
        conditions.append(_sla_breached(cfg, now))
    if flt.hold_due:
        conditions += [col(Ticket.status) == "hold", col(Ticket.hold_until) <= now]
    if conditions:
        query = query.where(and_(*conditions))
    key, number = SORTS[flt.sort], col(Ticket.number)
    query = query.order_by(*((key.desc(), number.desc()) if flt.desc else (key, number)))
    if not needs_exact_sla(flt, cfg):
        query = query.offset(flt.offset or None).limit(flt.limit)
    return query


def select_tickets(
    session: Session, flt: TicketFilter, cfg: Config, now: datetime, batch: int = 1000
) -> Iterator[list[Ticket]]:
    """The filter's tickets in batches, streamed: never the whole table in memory."""
    calendar, flt = sla.Calendar.of(cfg), with_found(session, flt, cfg.tickets.timezone)
    exact, left = needs_exact_sla(flt, cfg), flt.limit
    skip = flt.offset if exact else 0  # the database skipped them otherwise
    result = session.exec(ticket_query(flt, cfg, now).execution_options(yield_per=batch))
    try:
        for part in result.partitions():
            tickets = list(part)
            if exact:
                tickets = [t for t in tickets if sla.first_response(cfg, calendar, t, now).breached]
                tickets, skip = tickets[skip:], max(0, skip - len(tickets))
            if left is not None:
                tickets, left = tickets[:left], left - min(left, len(tickets))
            if tickets:
                yield tickets
            if left == 0:
                break
    finally:
        # A limit reached early leaves the (server-side, on PostgreSQL) cursor open otherwise.
        result.close()
