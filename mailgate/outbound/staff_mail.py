"""The mails staff get: new tickets and replies, hold reminders, missed first responses, digest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, select

from mailgate.desk import notes
from mailgate.desk.customers import organisation, visible_tickets
from mailgate.outbound.context import Context
from mailgate.outbound.enclosures import Chosen, article_files, choose, text_allowance
from mailgate.outbound.recipients import staff_recipients, to_staff
from mailgate.outbound.sending import AttachmentData, Renderings, queue_mail, ticket_thread
from mailgate.outbound.template_views import (
    base_context,
    listed_views,
    local_time,
    person_view,
    supporthhmm,
    ticket_references,
)
from mailgate.store.models import Article, Contact, Organisation, Ticket

# "outsider": someone who is not part of the ticket wrote with its tag (an internal note).
StaffEvent = Literal["new", "reply", "outsider"]


def notify_staff(
    session: Session, ctx: Context, ticket: Ticket, article: Article, event: StaffEvent
) -> None:
    """Tell the assignee and further agents (else the team) about a new ticket, a
    customer's reply, or a mail from outside the ticket."""
    recipients = staff_recipients(session, ctx, ticket)
    if not recipients:
        return  # nobody to tell: the organisation need not be read
    org = organisation(session, ticket.organisation_id)
    if org is None:
        return
    chosen = _article_files(session, ctx, article)
    context = {**_staff_context(session, ctx, ticket, article, org), "event": event}
    context["attachments"] = listed_views(chosen.listed)
    # Every file as an attachment: the notification's HTML shows none of them inline.
    files = [(f.filename, f.content_type, f.data) for f in chosen.files]
    renderings: Renderings = {}
    for address, language in recipients:
        _notify_one(session, ctx, ticket, article, address, language, context, files, renderings)


def _notify_one(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    article: Article,
    address: str,
    language: str,
    context: dict[str, object],
    files: list[AttachmentData],
    renderings: Renderings,
) -> None:
    queue_mail(
        session,
        ctx,
        "staff_notification",
        language,
        context,
        to=[address],
        ticket=ticket,
        answering=article.message_id or None,
        # Read again for each agent: it includes the notifications queued for the ones before.
        thread=ticket_thread(session, ticket)[1],
        # Not a reply to the agent: a notification of something that happened elsewhere.
        auto_submitted="auto-generated",
        attachments=files,
        renderings=renderings,
    )


def _article_files(session: Session, ctx: Context, article: Article) -> Chosen:
    """The customer's files for a staff notification: up to [staff]
    notification_attachment_limit together, and what the relay takes beside the text (which
    goes out twice: plain and in the HTML)."""
    return choose(
        session,
        ctx.config.data_dir,
        article_files(session, article.id or 0),
        ctx.config.outbound.max_message_size - text_allowance(article.text, article.text),
        ctx.config.staff.notification_attachment_limit,
    )


def _staff_context(
    session: Session, ctx: Context, ticket: Ticket, article: Article, org: Organisation
) -> dict[str, object]:
    """Who the customer is and what they wrote, for the staff notification."""
    requester = session.get(Contact, ticket.requester_id)
    # The tickets the requester's list would show: a pool's strangers are not counted.
    visible = visible_tickets(session, requester).subquery() if requester else None
    open_count = select(func.count()).select_from(visible) if visible is not None else None
    return {
        **base_context(ctx, ticket),
        "organisation": org.name,
        "requester": person_view(requester.name, requester.email)
        if requester
        else person_view("", ""),
        "author": person_view(article.from_name, article.from_addr),
        "text": article.text,
        "open_tickets": int(session.exec(open_count).one()) if open_count is not None else 0,
        "hours": supporthhmm(session, ctx, org),
        "comment_address": ctx.config.smtp.comment_address,
        "references": ticket_references(session, ticket),
        "warning": notes.warning(article.note),
    }


def _ticket_staff_context(session: Session, ctx: Context, ticket: Ticket) -> dict[str, object]:
    """What staff need to pick a ticket up again without opening it first."""
    org = session.get(Organisation, ticket.organisation_id)
    requester = session.get(Contact, ticket.requester_id)
    return {
        **base_context(ctx, ticket),
        "organisation": org.name if org else "",
        "requester": person_view(requester.name, requester.email)
        if requester
        else person_view("", ""),
        "hold_until": local_time(ctx, ticket.hold_until)[:10],
        "created_at": local_time(ctx, ticket.created_at),
        "last_action_by": ticket.last_action_by,
        "last_action_at": local_time(ctx, ticket.last_action_at),
        "timezone": ctx.config.tickets.timezone,
        "references": ticket_references(session, ticket),
    }


def send_hold_reminder(session: Session, ctx: Context, ticket: Ticket) -> None:
    """Tell staff a ticket on hold has reached its resubmission date."""
    to_staff(session, ctx, ticket, "hold_reminder", _ticket_staff_context(session, ctx, ticket))


def send_sla_breach(session: Session, ctx: Context, ticket: Ticket, due_at: datetime) -> None:
    """Tell staff a ticket's first-response target has passed without an answer."""
    context = {
        **_ticket_staff_context(session, ctx, ticket),
        "due_at": local_time(ctx, due_at),
        "target": ctx.config.sla.first_response.get(ticket.priority, ""),
    }
    to_staff(session, ctx, ticket, "sla_breach", context)


def send_digest(
    session: Session, ctx: Context, address: str, language: str, context: Mapping[str, object]
) -> None:
    """The daily digest to one agent or the team address; about many tickets, so no ticket
    of its own and no tag: a reply to it files nowhere."""
    queue_mail(
        session,
        ctx,
        "digest",
        language,
        {**context, "support_address": ctx.from_address},
        to=[address],
        auto_submitted="auto-generated",
    )
