"""Reminders that come due with time: hold resubmissions, confirmation reminders, closing
unconfirmed tickets, and first-response breaches for staff.

Every mail here is claimed with a conditional UPDATE in the transaction that queues it: two
daemons on one database, or a run repeated after a crash, never send it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from mailgate.desk import sla
from mailgate.desk.lifecycle import change_status
from mailgate.desk.tickets import record_event
from mailgate.outbound import notify
from mailgate.outbound.context import Context
from mailgate.store.database import StoreUnavailable
from mailgate.store.models import Ticket

log = logging.getLogger("mailgate.reminders")

SYSTEM = "system"


def _claim(session: Session, ticket_id: int, *where: Any, **values: object) -> bool:
    """Set `values` on the ticket if it still matches `where`; whoever gets rowcount 1 owns
    the reminder. On PostgreSQL a concurrent claim waits for the row lock, then sees the
    claimed row no longer match; on SQLite the write lock serialises the two."""
    result = session.execute(
        update(Ticket).where(col(Ticket.id) == ticket_id, *where).values(**values)
    )
    return int(getattr(result, "rowcount", 0)) == 1


def _ids(ctx: Context, *where: Any) -> list[int]:
    with ctx.store.session() as session:
        query = select(Ticket.id).where(*where).order_by(col(Ticket.number))
        return [i for i in session.exec(query) if i is not None]


def _each(ctx: Context, ids: list[int], act: Callable[[Session, int, datetime], bool]) -> int:
    """One transaction per ticket: a ticket whose mail cannot be made leaves the others be."""
    done = 0
    for ticket_id in ids:
        try:
            with ctx.store.session() as session:
                done += act(session, ticket_id, ctx.clock())
        except StoreUnavailable as exc:  # busy or gone for now: the next run tries again
            log.warning("event=reminder_deferred ticket_id=%s error=%r", ticket_id, str(exc))
        except Exception:  # a fault of ours: logged, and the other tickets still go out
            log.exception("event=reminder_failed ticket_id=%s", ticket_id)
    return done


def _fresh(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    assert ticket is not None  # just claimed in this transaction
    return ticket


# --- hold resubmission ---------------------------------------------------------------------


def _hold_due(now: datetime) -> tuple[Any, ...]:
    return (
        col(Ticket.status) == "hold",
        col(Ticket.hold_until).is_not(None),
        col(Ticket.hold_until) <= now,
        col(Ticket.reminded_at).is_(None),
    )


def remind_holds(ctx: Context) -> int:
    """Tell staff that a ticket on hold has reached its resubmission date. It stays on hold."""

    def act(session: Session, ticket_id: int, now: datetime) -> bool:
        if not _claim(session, ticket_id, *_hold_due(now), reminded_at=now):
            return False
        ticket = _fresh(session, ticket_id)
        notify.send_hold_reminder(session, ctx, ticket)
        record_event(session, ticket, SYSTEM, "reminder", "hold_reminder to staff", now)
        return True

    return _each(ctx, _ids(ctx, *_hold_due(ctx.clock())), act)


# --- delivered tickets: reminder and automatic close ----------------------------------------


def _delivered_since(cutoff: datetime) -> tuple[Any, ...]:
    return (
        col(Ticket.status) == "delivered",
        col(Ticket.resolved_at).is_not(None),
        col(Ticket.resolved_at) <= cutoff,
    )


def remind_confirmations(ctx: Context) -> int:
    """Ask the customer once more to confirm a delivered ticket they have not answered."""
    days = ctx.config.reminders.confirmation_days
    if days <= 0:
        return 0

    def where(now: datetime) -> tuple[Any, ...]:
        return (*_delivered_since(now - timedelta(days=days)), col(Ticket.reminded_at).is_(None))

    def act(session: Session, ticket_id: int, now: datetime) -> bool:
        if not _claim(session, ticket_id, *where(now), reminded_at=now):
            return False
        ticket = _fresh(session, ticket_id)
        notify.send_confirmation_reminder(session, ctx, ticket, days)
        record_event(session, ticket, SYSTEM, "reminder", "confirmation_reminder to customer", now)
        return True

    return _each(ctx, _ids(ctx, *where(ctx.clock())), act)


def auto_close(ctx: Context) -> int:
    """Close delivered tickets the customer never confirmed, and tell them so."""
    days = ctx.config.reminders.auto_close_days
    if days <= 0:
        return 0

    def where(now: datetime) -> tuple[Any, ...]:
        return _delivered_since(now - timedelta(days=days))

    def act(session: Session, ticket_id: int, now: datetime) -> bool:
        # Touching the row claims it: a second instance waits, then finds it closed.
        if not _claim(session, ticket_id, *where(now), updated_at=now):
            return False
        ticket = _fresh(session, ticket_id)
        reason = f"not confirmed within {days} days"
        change_status(session, ticket, "closed", SYSTEM, now, reason)
        notify.send_status_change(
            session, ctx, ticket, "delivered", "closed", "closed", unconfirmed_days=days
        )
        return True

    return _each(ctx, _ids(ctx, *where(ctx.clock())), act)


def run_reminders(ctx: Context) -> int:
    """The "reminders" job: how many tickets were reminded or closed."""
    # Closing first: a ticket due for both is closed, not reminded and then closed.
    return auto_close(ctx) + remind_confirmations(ctx) + remind_holds(ctx)


# --- first-response breaches -----------------------------------------------------------------


_UNANSWERED: tuple[Any, ...] = (
    col(Ticket.status) != "closed",
    col(Ticket.first_response_at).is_(None),
    col(Ticket.resolved_at).is_(None),
    col(Ticket.sla_notified_at).is_(None),
)


def escalate_breaches(ctx: Context) -> int:
    """The "sla-escalation" job: tell the ticket's agents (else the team) once that its
    first-response target was missed."""
    calendar = sla.Calendar.of(ctx.config)

    def act(session: Session, ticket_id: int, now: datetime) -> bool:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return False
        target = sla.first_response(ctx.config, calendar, ticket, now)
        if not target.breached or target.due_at is None:
            return False
        if not _claim(session, ticket_id, *_UNANSWERED, sla_notified_at=now):
            return False
        ticket = _fresh(session, ticket_id)
        notify.send_sla_breach(session, ctx, ticket, target.due_at)
        detail = f"first response was due {target.due_at:%Y-%m-%d %H:%M} UTC"
        record_event(session, ticket, SYSTEM, "sla_breach", detail, now)
        return True

    # The target depends on priority and business days, so it is worked out per ticket;
    # the query only narrows to tickets nobody has answered or been told about yet.
    return _each(ctx, _ids(ctx, *_UNANSWERED), act)
