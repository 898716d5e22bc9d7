"""Time on a ticket: booking it, correcting it within what was booked, listing the entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.desk.tickets import record_event
from mailgate.moments import aware, hhmm
from mailgate.reading.commands import MAX_MINUTES, duration_problem, parse_signed_duration
from mailgate.reading.phrases import Phrase
from mailgate.store.models import Agent, Ticket, TimeEntry

UNKNOWN_AGENT = "(unknown)"


class TimeRefused(ValueError):
    """A booking or correction that cannot be made, worded for the agent or operator."""


def parse_booking(amount: str, note: str) -> int:
    """Minutes to book from an operator's AMOUNT (90m, 1h30; -30m corrects), by the rules of
    `#time`: a unit is required, at most 24 hours, and a correction says why."""
    try:
        minutes, rest = parse_signed_duration(amount)
    except ValueError:
        raise TimeRefused(duration_problem(amount)) from None
    if rest:
        raise TimeRefused(duration_problem(amount))
    if not 0 < abs(minutes) <= MAX_MINUTES:
        raise TimeRefused(Phrase("minutes_range", minutes=abs(minutes)))
    if minutes < 0 and not note.strip():
        raise TimeRefused("a correction needs a note saying why (--note)")
    return minutes


def booked_minutes(session: Session, ticket_id: int, agent_id: int | None, billable: bool) -> int:
    """What one agent (None: nobody known) has booked on the ticket as billable or free time."""
    query = select(func.coalesce(func.sum(TimeEntry.minutes), 0)).where(
        TimeEntry.ticket_id == ticket_id,
        col(TimeEntry.billable).is_(billable),
        TimeEntry.agent_id == agent_id
        if agent_id is not None
        else col(TimeEntry.agent_id).is_(None),
    )
    return int(session.exec(query).one())


def book_time(
    session: Session,
    ticket: Ticket,
    agent: Agent | None,
    minutes: int,
    billable: bool,
    note: str,
    actor: str,
    now: datetime,
) -> TimeEntry:
    """Book `minutes` (negative: a correction) for `agent` and record the event. A correction
    takes back at most what that agent booked on the ticket as that kind of time: a total
    below zero would credit the customer for work nobody booked."""
    kind = "billable" if billable else "free"
    if minutes < 0:
        booked = booked_minutes(session, ticket.id or 0, agent.id if agent else None, billable)
        if booked + minutes < 0:
            raise TimeRefused(
                Phrase(
                    "correction_too_big",
                    amount=hhmm(-minutes),
                    booked=hhmm(booked),
                    kind=Phrase(kind),
                    who=agent.email if agent is not None else Phrase("no_known_agent"),
                )
            )
    entry = TimeEntry(
        ticket_id=ticket.id or 0,
        agent_id=agent.id if agent else None,
        minutes=minutes,
        billable=billable,
        note=note,
        created_at=now,
    )
    session.add(entry)
    if billable and minutes > 0:
        ticket.billable = True
    label = f"{minutes} min {kind}" + (" (correction)" if minutes < 0 else "")
    record_event(session, ticket, actor, "time", label + (f": {note}" if note else ""), now)
    ticket.updated_at = now
    session.add(ticket)
    return entry


def time_entries(session: Session, ticket: Ticket, timezone: str) -> list[dict[str, Any]]:
    """The ticket's time entries, oldest first, with the desk's date and time of each."""
    query = (
        select(TimeEntry, Agent)
        .join(Agent, col(Agent.id) == col(TimeEntry.agent_id), isouter=True)
        .where(TimeEntry.ticket_id == ticket.id)
        .order_by(col(TimeEntry.created_at), col(TimeEntry.id))
    )
    zone = ZoneInfo(timezone)
    return [
        {
            "created_at": aware(entry.created_at).astimezone(zone).isoformat(),
            "agent": agent.email if agent is not None else UNKNOWN_AGENT,
            "minutes": entry.minutes,
            "billable": entry.billable,
            "correction": entry.minutes < 0,
            "note": entry.note,
        }
        for entry, agent in session.exec(query)
    ]


def ticket_time(
    session: Session, ticket: Ticket, cid: str, timezone: str, added: TimeEntry | None = None
) -> dict[str, Any]:
    """The ticket's entries and what they add up to, billable and free."""
    entries = time_entries(session, ticket, timezone)
    billable = sum(e["minutes"] for e in entries if e["billable"])
    free = sum(e["minutes"] for e in entries if not e["billable"])
    data: dict[str, Any] = {
        "cid": cid,
        "entries": entries,
        "billable_minutes": billable,
        "free_minutes": free,
        "minutes": billable + free,
    }
    if added is not None:
        data["added"] = {"minutes": added.minutes, "billable": added.billable, "note": added.note}
    return data
