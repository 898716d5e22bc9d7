"""Answers to a sender's mail that files on no ticket: their ticket list, or why it was refused."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from mailgate.desk.customers import visible_tickets
from mailgate.moments import aware
from mailgate.outbound.context import Context
from mailgate.outbound.sending import queue_mail
from mailgate.outbound.sheets import XLSX_TYPE, tickets_workbook
from mailgate.outbound.template_views import language_of, supporthhmm, ticket_view
from mailgate.reading.language import mail_language
from mailgate.reading.parse import ParsedMail
from mailgate.store.models import COMPANY, Contact, Organisation


def ticket_rows(session: Session, ctx: Context, contact: Contact) -> list[dict[str, object]]:
    """The open tickets the contact may see (customers.visible_tickets), one dict each (keys
    of sheets.TICKET_COLUMNS). Times are the desk's wall clock ([tickets] timezone), as the
    customer reads them: naive, since a spreadsheet cell holds no time zone."""
    zone = ZoneInfo(ctx.config.tickets.timezone)
    rows: list[dict[str, object]] = []
    for ticket in session.exec(visible_tickets(session, contact)):
        view = ticket_view(ctx, ticket)
        local = aware(ticket.last_action_at).astimezone(zone).replace(tzinfo=None)
        rows.append({**view, "last_action_by": ticket.last_action_by, "last_action_at": local})
    return rows


def send_ticket_list(
    session: Session, ctx: Context, contact: Contact | None, mail: ParsedMail
) -> bool:
    """The open tickets the contact may see, as a table and an .xlsx file; the query is bound
    to the contact, not to the mail. Someone with none (or no contact at all) gets a short
    answer instead. Whether a list went out."""
    org = session.get(Organisation, contact.organisation_id) if contact else None
    if contact is not None and contact.failing:
        return False
    rows = ticket_rows(session, ctx, contact) if contact is not None else []
    if contact is None or org is None or not rows:
        _send_no_tickets(session, ctx, contact, mail)
        return False
    now = ctx.clock().astimezone(ZoneInfo(ctx.config.tickets.timezone))
    context = {
        "contact": {"name": contact.name, "email": contact.email},
        # Whose list it is: the company's, else the person's own.
        "organisation": org.name if org.kind == COMPANY else contact.email,
        "tickets": [{**r, "last_action_at": _when(r["last_action_at"])} for r in rows],
        "hours": supporthhmm(session, ctx, org),
        "support_address": ctx.from_address,
        "today": now.strftime("%Y-%m-%d"),
        "timezone": ctx.config.tickets.timezone,
    }
    language, zone = language_of(ctx, contact), ctx.config.tickets.timezone
    sheet = (f"tickets-{now:%Y-%m-%d}.xlsx", XLSX_TYPE, tickets_workbook(rows, language, zone))
    queue_mail(
        session,
        ctx,
        "ticket_list",
        language,
        context,
        to=[contact.email],
        answering=mail.message_id,
        thread=mail.references,
        attachments=[sheet],
    )
    return True


def _send_no_tickets(
    session: Session, ctx: Context, contact: Contact | None, mail: ParsedMail
) -> None:
    """A short answer to a list request from someone with no open tickets to show."""
    context = {"address": mail.from_addr, "support_address": ctx.from_address}
    language = language_of(ctx, contact) if contact else mail_language(mail, ctx.languages)
    queue_mail(
        session,
        ctx,
        "no_tickets",
        language,
        context,
        to=[mail.from_addr],
        answering=mail.message_id,
        thread=mail.references,
    )


def _when(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else ""


def send_rejected_sender(
    session: Session,
    ctx: Context,
    address: str,
    subject: str,
    message_id: str | None = None,
    language: str | None = None,
) -> None:
    """Tell an unknown sender, politely, that only known customers are served."""
    context = {"subject": subject, "support_address": ctx.from_address}
    queue_mail(
        session, ctx, "rejected_sender", language, context, to=[address], answering=message_id
    )


def send_too_large(
    session: Session,
    ctx: Context,
    address: str,
    subject: str,
    size: int,
    limit: int,
    message_id: str | None = None,
    language: str | None = None,
) -> None:
    """Tell a sender their mail was too large to take, and what the limit is."""
    context = {
        "subject": subject,
        "size": size,
        "limit": limit,
        "support_address": ctx.from_address,
    }
    queue_mail(
        session, ctx, "message_too_large", language, context, to=[address], answering=message_id
    )
