"""The options of `tickets list` and `export` read into a TicketFilter, or refused by name."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlmodel import Session

from mailgate.desk.agents import find_agent
from mailgate.desk.customers import ContingentError, find_organisation
from mailgate.desk.lifecycle import Refused, resolve_agent
from mailgate.search import engine
from mailgate.search.query import QueryError
from mailgate.store.models import PRIORITIES, STATUSES, TYPES, Ticket

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
    text: str | None = None  # a search query (mailgate.search): words, from:, ref:, ...
    found: tuple[int, ...] | None = None  # the tickets `text` finds, once looked up
    sla_breached: bool = False
    sort: str = "number"
    desc: bool = False
    limit: int | None = None
    offset: int = 0  # tickets skipped first (the web desk's later pages)
    hold_due: bool = False  # on hold, and the hold date has come


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


def with_found(session: Session, flt: TicketFilter, zone: str) -> TicketFilter:
    """The filter with the tickets its --text finds looked up by the search engine (its
    best MAX_LIMIT; after:/before: are days in `zone`); FilterError for a query the engine
    cannot run."""
    if not flt.text or flt.found is not None:
        return flt
    try:
        return replace(flt, found=tuple(engine.matching_ids(session, flt.text, zone=zone)))
    except QueryError as exc:
        raise FilterError("--text", str(exc)) from None


def checked(session: Session, flt: TicketFilter, zone: str = "UTC") -> TicketFilter:
    """The filter with its organisation found as `report time --customer` finds one (exact,
    else any case if only one fits) and its agent resolved to an address as `#assign`
    resolves one (address, name, first name, local part); FilterError if not."""
    flt = with_found(session, flt, zone)
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
