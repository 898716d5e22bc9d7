"""What mails show of tickets, people, times and contingents, shaped for the templates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.desk import lookups
from mailgate.desk.customers import billable_minutes
from mailgate.moments import aware, hhmm
from mailgate.outbound.context import Context
from mailgate.outbound.enclosures import Listed
from mailgate.reading import tags
from mailgate.store.models import Agent, Contact, Organisation, Ticket, TimeEntry


def ticket_view(ctx: Context, ticket: Ticket) -> dict[str, object]:
    prefix = ctx.config.tickets.prefix
    return {
        "cid": tags.cid(prefix, ticket.number),
        "number": ticket.number,
        # Without any tag of ours, so the template's own tag stands exactly once.
        "subject": tags.strip_tags(ticket.subject, prefix),
        "status": ticket.status,
        "priority": ticket.priority,
    }


def base_context(ctx: Context, ticket: Ticket) -> dict[str, object]:
    return {
        "ticket": ticket_view(ctx, ticket),
        "support_address": ctx.from_address,
        "reply_hint": tags.format_tag(ctx.config.tickets.prefix, ticket.number),
    }


def language_of(ctx: Context, person: Contact | Agent | None) -> str:
    chosen = person.language if person is not None else None
    return chosen or ctx.config.tickets.default_language


def local_time(ctx: Context, moment: datetime | None) -> str:
    """A stored moment (UTC, naive from SQLite) as the desk reads it: in [tickets] timezone."""
    if moment is None:
        return ""
    zone = ZoneInfo(ctx.config.tickets.timezone)
    return aware(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def hold_day(ctx: Context, ticket: Ticket) -> dict[str, int] | None:
    """The resubmission day of a ticket on hold, as the desk counts days; the templates
    write it out in the customer's language."""
    if ticket.status != "hold" or ticket.hold_until is None:
        return None
    day = aware(ticket.hold_until).astimezone(ZoneInfo(ctx.config.tickets.timezone)).date()
    return {"year": day.year, "month": day.month, "day": day.day}


def person_view(name: str, email: str) -> dict[str, object]:
    """A sender as staff see them. A display name with an address in it (plain or RFC 2047
    encoded, it arrives decoded) could pass the mail off as ours or a colleague's: it is
    hidden, and the real address always shows."""
    hidden = "@" in name
    return {"name": "" if hidden else name, "email": email, "name_hidden": hidden}


def ticket_references(session: Session, ticket: Ticket) -> list[str]:
    return lookups.references(session, [ticket.id or 0]).get(ticket.id or 0, [])


def listed_views(items: Sequence[Listed]) -> list[dict[str, object]]:
    return [{**item.view(), "reason": item.reason} for item in items]


def ticket_billable_minutes(session: Session, ticket_id: int) -> int:
    query = select(func.coalesce(func.sum(TimeEntry.minutes), 0)).where(
        TimeEntry.ticket_id == ticket_id, col(TimeEntry.billable).is_(True)
    )
    return int(session.exec(query).one())


def supporthhmm(session: Session, ctx: Context, organisation: Organisation) -> dict[str, object]:
    """The organisation's contingent: bought, used by billable time, left (as h:mm)."""
    used = billable_minutes(session, organisation.id or 0)
    left = organisation.support_minutes - used
    return {
        "total": hhmm(organisation.support_minutes),
        "used": hhmm(used),
        "left": hhmm(left),
        # An organisation without a contingent is not on hours: nothing to warn about, and
        # nothing to tell its customers.
        "bought": organisation.support_minutes > 0,
        "worked": used > 0,  # billable time booked, hours bought or not
        "low": organisation.support_minutes > 0 and left < ctx.config.staff.hours_warning * 60,
    }
