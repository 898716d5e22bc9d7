"""The daily digest: each agent's tickets that need a look, and the desk view for the team.

Sent once per day in the desk's time zone, however many daemons run the job and however
often it is run: the day is claimed in the Counter table in the transaction that queues the
mails.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailgate.desk import sla
from mailgate.moments import aware
from mailgate.outbound import notify
from mailgate.outbound.context import Context
from mailgate.outbound.template_views import local_time
from mailgate.reading import tags
from mailgate.store.models import (
    OPEN_STATUSES,
    Agent,
    Contact,
    Counter,
    Organisation,
    Ticket,
    TicketAgent,
)

DIGEST_COUNTER = "digest"
# Sections of an agent's digest, in the order the mail shows them. A ticket is in the first
# that applies; a ticket on hold whose date has not come is in none (that is what hold is for).
AGENT_SECTIONS = ("hold_due", "delivered", "sla", "open")
TEAM_SECTIONS = ("unassigned", "sla", "hold_due")
_PRIORITY_ORDER = {"A": 0, "B": 1, "C": 2}


@dataclass(frozen=True)
class Entry:
    """One ticket as the digest sees it."""

    ticket: Ticket
    agent_ids: frozenset[int]
    breached: bool
    hold_due: bool
    line: dict[str, object]

    @property
    def section(self) -> str | None:
        if self.hold_due:
            return "hold_due"
        if self.ticket.status == "delivered":
            return "delivered"
        if self.breached:
            return "sla"
        return "open" if self.ticket.status in ("open", "working") else None


def desk_day(ctx: Context, now: datetime) -> date:
    return now.astimezone(ZoneInfo(ctx.config.tickets.timezone)).date()


def send_digests(ctx: Context) -> int:
    """The "daily-digest" job: claim today, then queue every digest; how many were queued.
    A second run on the same day finds the day claimed and sends nothing."""
    now = ctx.clock()
    today = desk_day(ctx, now)
    _ensure_counter(ctx)
    with ctx.store.session() as session:
        if not _claim_day(session, int(today.strftime("%Y%m%d"))):
            return 0
        entries = _entries(session, ctx, now)
        sent = 0
        for agent in _agents(session):
            sent += _agent_digest(session, ctx, agent, entries, today)
        sent += _team_digest(session, ctx, entries, today)
        return sent


def _ensure_counter(ctx: Context) -> None:
    """The counter row exists before it is claimed; two first runs may race to add it."""
    try:
        with ctx.store.session() as session:
            if session.get(Counter, DIGEST_COUNTER) is None:
                session.add(Counter(name=DIGEST_COUNTER, value=0))
    except IntegrityError:
        pass  # the other instance added it: just as good


def _claim_day(session: Session, day: int) -> bool:
    """Advance the counter to today unless it is there already. A concurrent claim waits for
    the row lock (PostgreSQL) or the write lock (SQLite) and then matches no row."""
    result = session.execute(
        update(Counter)
        .where(col(Counter.name) == DIGEST_COUNTER, col(Counter.value) < day)
        .values(value=day)
    )
    return int(getattr(result, "rowcount", 0)) == 1


def _agents(session: Session) -> list[Agent]:
    query = select(Agent).where(col(Agent.active).is_(True), col(Agent.notify).is_(True))
    return list(session.exec(query.order_by(col(Agent.email))))


def _entries(session: Session, ctx: Context, now: datetime) -> list[Entry]:
    """Every ticket not closed, with who works on it and where it belongs."""
    query = select(Ticket).where(col(Ticket.status) != "closed")
    found = list(session.exec(query))
    colleagues: dict[int, set[int]] = {}
    ids = [t.id for t in found]
    for ticket_id, agent_id in session.exec(
        select(TicketAgent.ticket_id, TicketAgent.agent_id).where(
            col(TicketAgent.ticket_id).in_(ids)
        )
    ):
        colleagues.setdefault(ticket_id, set()).add(agent_id)
    calendar = sla.Calendar.of(ctx.config)
    entries = []
    for ticket in found:
        agents = set(colleagues.get(ticket.id or 0, set()))
        if ticket.assignee_id:
            agents.add(ticket.assignee_id)
        entries.append(
            Entry(
                ticket,
                frozenset(agents),
                _breached(ctx, calendar, ticket, now),
                _hold_due(ticket, now),
                _line(session, ctx, ticket, now),
            )
        )
    entries.sort(key=lambda e: (_PRIORITY_ORDER.get(e.ticket.priority, 9), e.ticket.number))
    return entries


def _breached(ctx: Context, calendar: sla.Calendar, ticket: Ticket, now: datetime) -> bool:
    """Missed its first-response target and still unanswered."""
    if ticket.first_response_at is not None or ticket.resolved_at is not None:
        return False
    return sla.first_response(ctx.config, calendar, ticket, now).breached


def _hold_due(ticket: Ticket, now: datetime) -> bool:
    return (
        ticket.status == "hold"
        and ticket.hold_until is not None
        and aware(ticket.hold_until) <= now
    )


def _line(session: Session, ctx: Context, ticket: Ticket, now: datetime) -> dict[str, object]:
    org = session.get(Organisation, ticket.organisation_id)
    requester = session.get(Contact, ticket.requester_id)
    who = (requester.name or requester.email) if requester else ""
    customer = f"{org.name} ({who})" if org and who else (org.name if org else who)
    age = now - aware(ticket.created_at)
    prefix = ctx.config.tickets.prefix
    return {
        "cid": tags.cid(prefix, ticket.number),
        "subject": tags.strip_tags(ticket.subject, prefix),
        "customer": customer,
        "priority": ticket.priority,
        "status": ticket.status,
        "last_action_by": ticket.last_action_by,
        "last_action_at": local_time(ctx, ticket.last_action_at),
        "hold_until": local_time(ctx, ticket.hold_until)[:10],
        "age_hours": max(0, int(age.total_seconds() // 3600)),
    }


def _sections(entries: Iterable[Entry], names: tuple[str, ...]) -> dict[str, list[object]]:
    sections: dict[str, list[object]] = {name: [] for name in names}
    for entry in entries:
        if entry.section in sections:
            sections[entry.section].append(entry.line)
    return sections


def _agent_digest(
    session: Session, ctx: Context, agent: Agent, entries: list[Entry], today: date
) -> int:
    mine = [e for e in entries if agent.id in e.agent_ids]
    sections = _sections(mine, AGENT_SECTIONS)
    listed = sum(len(s) for s in sections.values())
    if not listed:
        return 0  # nothing to look at: no mail
    context = {
        "team": False,
        "recipient": {"name": agent.name, "email": agent.email},
        "date": today.isoformat(),
        "sections": sections,
        "total": listed,
        "breaches": len(sections["sla"]),
        "counts": {},
        "timezone": ctx.config.tickets.timezone,
    }
    language = agent.language or ctx.config.tickets.default_language
    notify.send_digest(session, ctx, agent.email, language, context)
    return 1


def _team_digest(session: Session, ctx: Context, entries: list[Entry], today: date) -> int:
    """The desk view: sent every day there is a team address, so an empty desk shows too."""
    address = ctx.config.staff.team_address
    if not address:
        return 0
    sections: dict[str, list[object]] = {
        "unassigned": [e.line for e in entries if e.ticket.assignee_id is None],
        "sla": [e.line for e in entries if e.breached],
        "hold_due": [e.line for e in entries if e.hold_due],
    }
    counts = Tally(e.ticket.status for e in entries)
    context = {
        "team": True,
        "recipient": {"name": "", "email": address},
        "date": today.isoformat(),
        "sections": sections,
        "total": len(entries),
        "breaches": len(sections["sla"]),
        "counts": {status: counts.get(status, 0) for status in OPEN_STATUSES},
        "timezone": ctx.config.tickets.timezone,
    }
    notify.send_digest(session, ctx, address, ctx.config.tickets.default_language, context)
    return 1
