"""The mails customers get about their ticket: acknowledgement, status changes, reminders."""

from __future__ import annotations

from sqlmodel import Session

from mailgate.desk import unverified
from mailgate.desk.customers import organisation
from mailgate.moments import hhmm
from mailgate.outbound.context import Context
from mailgate.outbound.customer_links import CONTEXT_KEY, customer_links
from mailgate.outbound.recipients import left_out_failing, to_customers
from mailgate.outbound.sending import queue_mail
from mailgate.outbound.template_views import (
    base_context,
    hold_day,
    language_of,
    local_time,
    ticket_billable_minutes,
)
from mailgate.reading.parse import ParsedMail
from mailgate.store.models import COMPANY, Contact, Ticket

# The mails send_status_change may write: they share its recipients and its context.
STATUS_TEMPLATES = frozenset({"status_changed", "delivered", "closed", "reopened"})
CLOSED = "closed"


def acknowledge(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    contact: Contact,
    mail: ParsedMail,
    on_behalf: bool = False,
) -> None:
    """Tell the customer their request has a number, threaded under their own mail; or, for
    a request an agent took down for them (`#customer`), that it was recorded for them: they
    sent no mail to thank them for, and the agent's mail is no thread of theirs."""
    if contact.failing:
        left_out_failing(session, ctx, ticket, "acknowledgement", [contact])
        return
    if unverified.is_unverified_sender(contact):
        return  # nobody to thank: the pipeline sends none, and neither may anything else
    org = organisation(session, contact.organisation_id)
    context = {
        **base_context(ctx, ticket),
        "contact": {"name": contact.name, "email": contact.email},
        # A personal organisation or the pool is no customer's name to show them.
        "org_name": org.name if org and org.kind == COMPANY else None,
    }
    links = customer_links(session, ctx, ticket, [contact])
    if links:
        context[CONTEXT_KEY] = links[contact.id or 0]
    queue_mail(
        session,
        ctx,
        "acknowledgement_on_behalf" if on_behalf else "acknowledgement",
        language_of(ctx, contact),
        context,
        to=[contact.email],
        ticket=ticket,
        answering=None if on_behalf else mail.message_id,
        thread=() if on_behalf else mail.references,
        answers_recipient=mail.from_addr == contact.email,
    )


def send_status_change(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    old: str,
    new: str,
    template: str = "status_changed",
    *,
    old_priority: str | None = None,
    unconfirmed_days: int | None = None,
) -> None:
    """An optional mail about a change of status (or a delivery, closing, reopening); contacts
    who opted out of optional mail get none. `unconfirmed_days`: closed because the customer
    did not confirm the solution within that many days (the mail says why)."""
    if template not in STATUS_TEMPLATES:
        raise ValueError(f"not a status template: {template!r}")
    minutes = ticket_billable_minutes(session, ticket.id or 0)
    context = {
        **base_context(ctx, ticket),
        "old_status": old,
        "new_status": new,
        "old_priority": old_priority if old_priority not in (None, ticket.priority) else None,
        "confirm_words": list(ctx.config.tickets.confirm_words),
        "billable": ticket.billable or minutes > 0,
        "billable_time": hhmm(minutes) if minutes else None,
        "hold_until": hold_day(ctx, ticket),
        "unconfirmed_days": unconfirmed_days,
    }
    to_customers(session, ctx, ticket, template, context, optional=True)


def send_confirmation_reminder(session: Session, ctx: Context, ticket: Ticket, days: int) -> None:
    """Ask the customers once more to confirm a delivered ticket: the delivered mail's
    recipients, so contacts who opted out of optional mail get none."""
    context = {
        **base_context(ctx, ticket),
        "days": days,
        "delivered_at": local_time(ctx, ticket.resolved_at)[:10],
        "confirm_words": list(ctx.config.tickets.confirm_words),
        "auto_close_days": ctx.config.reminders.auto_close_days,
    }
    to_customers(session, ctx, ticket, "confirmation_reminder", context, optional=True)
