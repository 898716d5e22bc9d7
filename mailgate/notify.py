"""Which mails an outcome causes, to whom, with which template and threading headers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from mailgate import blobs, failing, loops, tags
from mailgate.compose import InvalidAddress, Outgoing, make_message_id, thread_index
from mailgate.context import Context
from mailgate.customers import agent_by_email, billable_minutes, organisation, remembered
from mailgate.models import (
    Agent,
    Article,
    Attachment,
    Contact,
    Organisation,
    Outbox,
    Participant,
    Ticket,
    TicketAgent,
    TimeEntry,
)
from mailgate.moments import aware, hhmm
from mailgate.outbox import enqueue
from mailgate.parse import ParsedMail
from mailgate.render import Rendered
from mailgate.sheets import XLSX_TYPE, tickets_workbook
from mailgate.tickets import WITHOUT_FURTHER_AGENTS, record_event

log = logging.getLogger("mailgate.notify")

StaffEvent = Literal["new", "reply"]
AttachmentData = tuple[str, str, bytes]
# One mail's renderings by language, shared by its recipients (one mail per agent).
Renderings = dict[str | None, Rendered]
# The mails send_status_change may write: they share its recipients and its context.
STATUS_TEMPLATES = frozenset({"status_changed", "delivered", "closed", "reopened"})
CLOSED = "closed"
# Built once: asked for every ticket a customer writes to, and building a statement costs
# about as much again as running it.
_TICKET_AGENTS = select(TicketAgent.agent_id).where(TicketAgent.ticket_id == bindparam("ticket"))


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


# --- the one path every mail takes -------------------------------------------------------------


def _conversation(ctx: Context, ticket: Ticket | None) -> tuple[tuple[str, str], ...]:
    """Outlook threads by Thread-Index and Thread-Topic rather than References."""
    if ticket is None:
        return ()
    index = thread_index(ticket.number, ticket.created_at, ctx.own_domain)
    topic = tags.strip_reply_prefixes(tags.strip_tags(ticket.subject, ctx.config.tickets.prefix))
    return (("Thread-Index", index), ("Thread-Topic", topic or ticket.subject))


def _queue(
    session: Session,
    ctx: Context,
    template: str,
    language: str | None,
    context: Mapping[str, object],
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    ticket: Ticket | None = None,
    answering: str | None = None,
    thread: Sequence[str] = (),
    auto_submitted: str | None = "auto-replied",
    attachments: Sequence[AttachmentData] = (),
    renderings: Renderings | None = None,
    answers_recipient: bool = True,
) -> None:
    """Render, compose and queue one mail from the support address. `answering` is the id
    (without brackets) of the mail this one replies to; `thread` the earlier ids before it.
    `renderings`: what other recipients' copies of the same mail were rendered to.
    `answers_recipient`: whether it answers its recipient's own mail (what a robot could
    call for again and again), not someone else's (an agent's #customer line)."""
    if template in loops.AUTO_ANSWERS and answers_recipient:
        to, cc = _loop_checked(session, ctx, template, ticket, to, cc)
        if not to:
            return
    rendered = _render(ctx, template, language, context, renderings)
    ids = [i for i in (*thread, answering) if i]
    outgoing = Outgoing(
        from_addr=ctx.config.outbound.from_,
        to=tuple(to),
        cc=tuple(cc),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=make_message_id(ticket.number if ticket else None, ctx.own_domain),
        in_reply_to=f"<{answering}>" if answering else None,
        references=tuple(f"<{i}>" for i in dict.fromkeys(ids)),
        # Replies come back to the support address, where the subject's tag files them.
        reply_to=ctx.config.outbound.from_,
        auto_submitted=auto_submitted,
        attachments=tuple(attachments),
        extra_headers=_conversation(ctx, ticket),
    )
    try:
        enqueue(session, ctx, ticket.id if ticket else None, template, outgoing)
    except InvalidAddress as exc:
        # The change that caused the mail stands; only this mail cannot go out (e.g. an
        # address our relay cannot carry). Staff see why in the ticket's history.
        if ticket is not None:
            record_event(
                session, ticket, "system", "mail_not_sent", f"{template}: {exc}", ctx.clock()
            )
        log.warning("event=mail_not_sent template=%s error=%r", template, str(exc))


def _render(
    ctx: Context,
    template: str,
    language: str | None,
    context: Mapping[str, object],
    renderings: Renderings | None,
) -> Rendered:
    """The template rendered, once per language for all recipients of the same mail."""
    if renderings is None:
        return ctx.renderer.render(template, language, context)
    if language not in renderings:
        renderings[language] = ctx.renderer.render(template, language, context)
    return renderings[language]


def _loop_checked(
    session: Session,
    ctx: Context,
    template: str,
    ticket: Ticket | None,
    to: Sequence[str],
    cc: Sequence[str],
) -> tuple[list[str], list[str]]:
    """The recipients an automatic mail may still go to; the others are left out, and the
    ticket's history says why (a loop would otherwise go unnoticed by staff)."""
    allowed: list[str] = []
    for address in dict.fromkeys([*to, *cc]):
        reason = loops.blocked(session, ctx, address)
        if reason is None:
            allowed.append(address)
        elif ticket is not None:
            detail = f"{template} to {address}: {reason}"
            record_event(session, ticket, "system", "mail_suppressed", detail, ctx.clock())
    kept_to = [a for a in to if a in allowed]
    kept_cc = [a for a in allowed if a not in kept_to]
    # With every To recipient left out, the first remaining one takes the To line.
    return (kept_to, kept_cc) if kept_to else (kept_cc[:1], kept_cc[1:])


def _language(ctx: Context, person: Contact | Agent | None) -> str:
    chosen = person.language if person is not None else None
    return chosen or ctx.config.tickets.default_language


def _base_context(ctx: Context, ticket: Ticket) -> dict[str, object]:
    return {
        "ticket": ticket_view(ctx, ticket),
        "support_address": ctx.from_address,
        "reply_hint": tags.format_tag(ctx.config.tickets.prefix, ticket.number),
    }


def _thread(session: Session, ticket: Ticket) -> tuple[str | None, list[str]]:
    """The customer's latest mail on the ticket (what an answer replies to) and the ticket's
    thread so far: the customers' mails and ours, oldest first. Staff and internal mails
    stay out: their ids would show customers where our agents' mail comes from."""
    articles = session.exec(
        select(Article.created_at, Article.message_id).where(
            Article.ticket_id == ticket.id,
            Article.direction == "customer",
            Article.message_id != "",
        )
    ).all()
    sent = session.exec(
        select(Outbox.created_at, Outbox.message_id).where(Outbox.ticket_id == ticket.id)
    ).all()
    customer_ids = [m for _, m in sorted(articles, key=lambda r: r[0])]
    ordered = [m for _, m in sorted([*articles, *sent], key=lambda r: r[0])]
    return (customer_ids[-1] if customer_ids else None), ordered


def _customers(session: Session, ticket: Ticket) -> list[Contact]:
    """The requester first, then participants."""
    ids = [ticket.requester_id]
    query = select(Participant.contact_id).where(Participant.ticket_id == ticket.id)
    ids += [i for i in session.exec(query) if i not in ids]
    return [c for c in (session.get(Contact, i) for i in ids) if c is not None]


def _left_out_failing(
    session: Session, ctx: Context, ticket: Ticket, template: str, contacts: Sequence[Contact]
) -> list[failing.Bounced]:
    """Failing addresses get no mail; the ticket's history says which mail and why."""
    bounces = [failing.last_bounce(session, c.email) for c in contacts if c.failing]
    for bounced in bounces:
        since = local_time(ctx, bounced.at) or "an earlier bounce"
        detail = f"{template} to {bounced.address}: address failing since {since}"
        if bounced.said:
            detail += f" ({bounced.said})"
        record_event(session, ticket, "system", "mail_not_sent", detail, ctx.clock())
    return bounces


def _to_customers(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    template: str,
    context: Mapping[str, object],
    *,
    optional: bool,
    auto_submitted: str | None = "auto-replied",
) -> list[failing.Bounced]:
    """One mail to the ticket's customers who take it; returns the failing ones left out."""
    everyone = _customers(session, ticket)
    left_out = _left_out_failing(session, ctx, ticket, template, everyone)
    contacts = [c for c in everyone if not c.failing and not (optional and c.opted_out)]
    if not contacts:
        return left_out
    # One mail for everyone, in the language of whoever comes first (the requester).
    answering, thread = _thread(session, ticket)
    _queue(
        session,
        ctx,
        template,
        _language(ctx, contacts[0]),
        context,
        to=[contacts[0].email],
        cc=[c.email for c in contacts[1:]],
        ticket=ticket,
        answering=answering,
        thread=thread,
        auto_submitted=auto_submitted,
    )
    return left_out


# --- figures staff and customers see ------------------------------------------------------------


def _ticket_billable_minutes(session: Session, ticket_id: int) -> int:
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
        # An organisation without a contingent is not on hours: nothing to warn about.
        "low": organisation.support_minutes > 0 and left < ctx.config.staff.hours_warning * 60,
    }


def _open_tickets(session: Session, organisation_id: int) -> list[Ticket]:
    query = (
        select(Ticket)
        .where(Ticket.organisation_id == organisation_id, Ticket.status != CLOSED)
        .order_by(col(Ticket.number))
    )
    return list(session.exec(query))


# --- the mails ------------------------------------------------------------------------------


def acknowledge(
    session: Session, ctx: Context, ticket: Ticket, contact: Contact, mail: ParsedMail
) -> None:
    """Tell the customer their request has a number, threaded under their own mail."""
    if contact.failing:
        _left_out_failing(session, ctx, ticket, "acknowledgement", [contact])
        return
    org = organisation(session, contact.organisation_id)
    context = {
        **_base_context(ctx, ticket),
        "contact": {"name": contact.name, "email": contact.email},
        "org_name": org.name if org else None,
    }
    _queue(
        session,
        ctx,
        "acknowledgement",
        _language(ctx, contact),
        context,
        to=[contact.email],
        ticket=ticket,
        answering=mail.message_id,
        thread=mail.references,
        answers_recipient=mail.from_addr == contact.email,
    )


def _staff_recipients(session: Session, ctx: Context, ticket: Ticket) -> list[tuple[str, str]]:
    """The assignee and further agents who take notifications, else the team address:
    (address, language) each."""
    ids = [ticket.assignee_id] if ticket.assignee_id else []
    if ticket.id not in remembered(session, WITHOUT_FURTHER_AGENTS):
        ids += session.exec(_TICKET_AGENTS, params={"ticket": ticket.id})
    agents = [session.get(Agent, i) for i in dict.fromkeys(ids)]
    found = [(a.email, _language(ctx, a)) for a in agents if a and a.notify and a.active]
    team = ctx.config.staff.team_address
    if not found and team:
        found.append((team, _language(ctx, None)))
    return found


def _article_files(
    session: Session, ctx: Context, article: Article
) -> tuple[list[AttachmentData], list[dict[str, object]]]:
    """The files that fit the size limit together (in order; a big one is skipped, smaller
    ones after it may still fit), and a list of all of them saying which travel along."""
    budget = ctx.config.staff.notification_attachment_limit
    files: list[AttachmentData] = []
    listed: list[dict[str, object]] = []
    query = (
        select(Attachment).where(Attachment.article_id == article.id).order_by(col(Attachment.id))
    )
    for item in session.exec(query):
        data = _blob(ctx, item.sha256) if item.size <= budget else None
        if data is not None:
            files.append((item.filename, item.content_type, data))
            budget -= item.size
        listed.append({"filename": item.filename, "size": item.size, "attached": data is not None})
    return files, listed


def _blob(ctx: Context, sha256: str) -> bytes | None:
    try:
        return blobs.read(ctx.config.data_dir, sha256)
    except OSError as exc:
        # A lost file must not hold up the notification: it is listed, not attached.
        log.warning("event=blob_unreadable sha256=%s error=%r", sha256, str(exc))
        return None


def _person(name: str, email: str) -> dict[str, object]:
    """A sender as staff see them. A display name with an address in it (plain or RFC 2047
    encoded, it arrives decoded) could pass the mail off as ours or a colleague's: it is
    hidden, and the real address always shows."""
    hidden = "@" in name
    return {"name": "" if hidden else name, "email": email, "name_hidden": hidden}


def _staff_context(
    session: Session, ctx: Context, ticket: Ticket, article: Article, org: Organisation
) -> dict[str, object]:
    """Who the customer is and what they wrote, for the staff notification."""
    requester = session.get(Contact, ticket.requester_id)
    open_count = select(func.count()).where(
        Ticket.organisation_id == org.id, Ticket.status != CLOSED
    )
    return {
        **_base_context(ctx, ticket),
        "organisation": org.name,
        "requester": _person(requester.name, requester.email) if requester else _person("", ""),
        "author": _person(article.from_name, article.from_addr),
        "text": article.text,
        "open_tickets": int(session.exec(open_count).one()),
        "hours": supporthhmm(session, ctx, org),
        "comment_address": ctx.config.smtp.comment_address,
    }


def notify_staff(
    session: Session, ctx: Context, ticket: Ticket, article: Article, event: StaffEvent
) -> None:
    """Tell the assignee and further agents (else the team) about a new ticket or a
    customer's reply."""
    recipients = _staff_recipients(session, ctx, ticket)
    if not recipients:
        return  # nobody to tell: the organisation need not be read
    org = organisation(session, ticket.organisation_id)
    if org is None:
        return
    files, listed = _article_files(session, ctx, article)
    context = {**_staff_context(session, ctx, ticket, article, org), "event": event}
    context["attachments"] = listed
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
    _queue(
        session,
        ctx,
        "staff_notification",
        language,
        context,
        to=[address],
        ticket=ticket,
        answering=article.message_id or None,
        # Read again for each agent: it includes the notifications queued for the ones before.
        thread=_thread(session, ticket)[1],
        # Not a reply to the agent: a notification of something that happened elsewhere.
        auto_submitted="auto-generated",
        attachments=files,
        renderings=renderings,
    )


def send_staff_answer(session: Session, ctx: Context, ticket: Ticket, article: Article) -> None:
    """An agent's answer to the customers of the ticket, from the support address: the agent's
    own address appears nowhere. Not optional, so opted-out contacts get it too."""
    context = {**_base_context(ctx, ticket), "text": article.text}
    # A person wrote this: no Auto-Submitted, so the customer's auto-responder may answer.
    left_out = _to_customers(
        session, ctx, ticket, "staff_answer", context, optional=False, auto_submitted=None
    )
    if left_out and article.from_addr:
        send_not_sent(session, ctx, ticket, article.from_addr, left_out)


def send_not_sent(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    agent_address: str,
    bounces: Sequence[failing.Bounced],
) -> None:
    """Tell the agent their answer did not go to addresses a bounce marked failing: when
    it came, what it said, and how to clear the mark."""
    agent = agent_by_email(session, agent_address.lower())
    context = {
        **_base_context(ctx, ticket),
        "addresses": [
            {"address": b.address, "bounced_at": local_time(ctx, b.at), "said": b.said}
            for b in bounces
        ],
        "timezone": ctx.config.tickets.timezone,
    }
    _queue(
        session,
        ctx,
        "answer_not_sent",
        _language(ctx, agent),
        context,
        to=[agent_address],
        ticket=ticket,
        thread=_thread(session, ticket)[1],
        auto_submitted="auto-generated",
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
) -> None:
    """An optional mail about a change of status (or a delivery, closing, reopening); contacts
    who opted out of optional mail get none."""
    if template not in STATUS_TEMPLATES:
        raise ValueError(f"not a status template: {template!r}")
    minutes = _ticket_billable_minutes(session, ticket.id or 0)
    context = {
        **_base_context(ctx, ticket),
        "old_status": old,
        "new_status": new,
        "old_priority": old_priority if old_priority not in (None, ticket.priority) else None,
        "confirm_words": list(ctx.config.tickets.confirm_words),
        "billable": ticket.billable or minutes > 0,
        "billable_time": hhmm(minutes) if minutes else None,
    }
    _to_customers(session, ctx, ticket, template, context, optional=True)


def send_command_errors(
    session: Session,
    ctx: Context,
    agent_address: str,
    ticket: Ticket | None,
    errors: list[str],
    subject: str,
) -> None:
    """Tell an agent which of their commands could not be applied, and why."""
    agent = session.exec(select(Agent).where(Agent.email == agent_address.lower())).first()
    context = {
        "ticket": ticket_view(ctx, ticket) if ticket else None,
        "errors": list(errors),
        "subject": subject,
        "support_address": ctx.from_address,
    }
    thread = _thread(session, ticket)[1] if ticket else []
    _queue(
        session,
        ctx,
        "command_error",
        _language(ctx, agent),
        context,
        to=[agent_address],
        ticket=ticket,
        thread=thread,
    )


def ticket_rows(session: Session, ctx: Context, organisation_id: int) -> list[dict[str, object]]:
    """The organisation's open tickets, one dict each (keys of sheets.TICKET_COLUMNS). Times
    are the desk's wall clock ([tickets] timezone), as the customer reads them: naive, since
    a spreadsheet cell holds no time zone."""
    zone = ZoneInfo(ctx.config.tickets.timezone)
    rows: list[dict[str, object]] = []
    for ticket in _open_tickets(session, organisation_id):
        view = ticket_view(ctx, ticket)
        local = aware(ticket.last_action_at).astimezone(zone).replace(tzinfo=None)
        rows.append({**view, "last_action_by": ticket.last_action_by, "last_action_at": local})
    return rows


def send_ticket_list(session: Session, ctx: Context, contact: Contact, mail: ParsedMail) -> None:
    """The open tickets of the contact's own organisation, as a table and an .xlsx file.
    Only ever that organisation's: the query is bound to the contact, not to the mail."""
    org = session.get(Organisation, contact.organisation_id)
    if contact.failing:
        # Not reached by the contact's own request (which clears the mark first).
        log.warning("event=mail_not_sent template=ticket_list to=%s reason=failing", contact.email)
        return
    if org is None:
        return
    rows = ticket_rows(session, ctx, org.id or 0)
    now = ctx.clock().astimezone(ZoneInfo(ctx.config.tickets.timezone))
    context = {
        "contact": {"name": contact.name, "email": contact.email},
        "organisation": org.name,
        "tickets": [{**r, "last_action_at": _when(r["last_action_at"])} for r in rows],
        "hours": supporthhmm(session, ctx, org),
        "support_address": ctx.from_address,
        "today": now.strftime("%Y-%m-%d"),
        "timezone": ctx.config.tickets.timezone,
    }
    sheet = (f"tickets-{now:%Y-%m-%d}.xlsx", XLSX_TYPE, tickets_workbook(rows))
    _queue(
        session,
        ctx,
        "ticket_list",
        _language(ctx, contact),
        context,
        to=[contact.email],
        answering=mail.message_id,
        thread=mail.references,
        attachments=[sheet],
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
    _queue(session, ctx, "rejected_sender", language, context, to=[address], answering=message_id)


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
    _queue(session, ctx, "message_too_large", language, context, to=[address], answering=message_id)


# --- reminders, first-response breaches and the daily digest ----------------------------------


def local_time(ctx: Context, moment: datetime | None) -> str:
    """A stored moment (UTC, naive from SQLite) as the desk reads it: in [tickets] timezone."""
    if moment is None:
        return ""
    zone = ZoneInfo(ctx.config.tickets.timezone)
    return aware(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _ticket_staff_context(session: Session, ctx: Context, ticket: Ticket) -> dict[str, object]:
    """What staff need to pick a ticket up again without opening it first."""
    org = session.get(Organisation, ticket.organisation_id)
    requester = session.get(Contact, ticket.requester_id)
    return {
        **_base_context(ctx, ticket),
        "organisation": org.name if org else "",
        "requester": _person(requester.name, requester.email) if requester else _person("", ""),
        "hold_until": local_time(ctx, ticket.hold_until)[:10],
        "created_at": local_time(ctx, ticket.created_at),
        "last_action_by": ticket.last_action_by,
        "last_action_at": local_time(ctx, ticket.last_action_at),
        "timezone": ctx.config.tickets.timezone,
    }


def _to_staff(
    session: Session, ctx: Context, ticket: Ticket, template: str, context: dict[str, object]
) -> None:
    """One mail per agent of the ticket (else the team), threaded with the ticket."""
    thread = _thread(session, ticket)[1]
    renderings: Renderings = {}
    for address, language in _staff_recipients(session, ctx, ticket):
        _queue(
            session,
            ctx,
            template,
            language,
            context,
            to=[address],
            ticket=ticket,
            thread=thread,
            auto_submitted="auto-generated",
            renderings=renderings,
        )


def send_hold_reminder(session: Session, ctx: Context, ticket: Ticket) -> None:
    """Tell staff a ticket on hold has reached its resubmission date."""
    _to_staff(session, ctx, ticket, "hold_reminder", _ticket_staff_context(session, ctx, ticket))


def send_sla_breach(session: Session, ctx: Context, ticket: Ticket, due_at: datetime) -> None:
    """Tell staff a ticket's first-response target has passed without an answer."""
    context = {
        **_ticket_staff_context(session, ctx, ticket),
        "due_at": local_time(ctx, due_at),
        "target": ctx.config.sla.first_response.get(ticket.priority, ""),
    }
    _to_staff(session, ctx, ticket, "sla_breach", context)


def send_confirmation_reminder(session: Session, ctx: Context, ticket: Ticket, days: int) -> None:
    """Ask the customers once more to confirm a delivered ticket: the delivered mail's
    recipients, so contacts who opted out of optional mail get none."""
    context = {
        **_base_context(ctx, ticket),
        "days": days,
        "delivered_at": local_time(ctx, ticket.resolved_at)[:10],
        "confirm_words": list(ctx.config.tickets.confirm_words),
        "auto_close_days": ctx.config.reminders.auto_close_days,
    }
    _to_customers(session, ctx, ticket, "confirmation_reminder", context, optional=True)


def send_digest(
    session: Session, ctx: Context, address: str, language: str, context: Mapping[str, object]
) -> None:
    """The daily digest to one agent or the team address; about many tickets, so no ticket
    of its own and no tag: a reply to it files nowhere."""
    _queue(
        session,
        ctx,
        "digest",
        language,
        {**context, "support_address": ctx.from_address},
        to=[address],
        auto_submitted="auto-generated",
    )
