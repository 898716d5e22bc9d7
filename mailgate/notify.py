"""Which mails an outcome causes, to whom, with which template and threading headers."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from mailgate import failing, lookups, loops, tags, unverified
from mailgate.compose import InvalidAddress, Outgoing, make_message_id, thread_index
from mailgate.context import Context
from mailgate.customers import (
    agent_by_email,
    billable_minutes,
    organisation,
    remembered,
    visible_tickets,
)
from mailgate.enclosures import Chosen, Enclosure, Listed, article_files, choose, text_allowance
from mailgate.forget import is_forgotten
from mailgate.language import mail_language
from mailgate.models import (
    COMPANY,
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
from mailgate.signatures import is_signed
from mailgate.tickets import WITHOUT_FURTHER_AGENTS, record_event
from mailgate.verify import NOT_VERIFIED

log = logging.getLogger("mailgate.notify")

StaffEvent = Literal["new", "reply"]
AttachmentData = tuple[str, str, bytes]
InlineData = tuple[str, str, bytes, str]
# One mail's renderings by language, shared by its recipients (one mail per agent).
Renderings = dict[str | None, Rendered]
# The mails send_status_change may write: they share its recipients and its context.
STATUS_TEMPLATES = frozenset({"status_changed", "delivered", "closed", "reopened"})
CLOSED = "closed"
_WARNINGS = (NOT_VERIFIED, unverified.NOTE)
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
    inline: Sequence[InlineData] = (),
    renderings: Renderings | None = None,
    scrub: Sequence[str] = (),
    answers_recipient: bool = True,
) -> None:
    """Render, compose and queue one mail from the support address. `answering` is the id
    (without brackets) of the mail this one replies to; `thread` the earlier ids before it.
    `renderings`: what other recipients' copies of the same mail were rendered to; `scrub`:
    addresses that must not appear in the mail (replaced by the support address).
    `answers_recipient`: whether it answers its recipient's own mail (what a robot could
    call for again and again), not someone else's (an agent's #customer line)."""
    if template in loops.AUTO_ANSWERS and answers_recipient:
        to, cc = _loop_checked(session, ctx, template, ticket, to, cc)
        if not to:
            return
    rendered = _scrubbed(_render(ctx, template, language, context, renderings), scrub, ctx)
    ids = [i for i in (*thread, answering) if i]
    outgoing = Outgoing(
        from_addr=ctx.config.outbound.from_,
        to=tuple(to),
        cc=tuple(cc),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=make_message_id(
            ticket.number if ticket else None, ctx.own_domain, ctx.secret_key
        ),
        in_reply_to=f"<{answering}>" if answering else None,
        references=tuple(f"<{i}>" for i in dict.fromkeys(ids)),
        # Replies come back to the support address, where the subject's tag files them.
        reply_to=ctx.config.outbound.from_,
        auto_submitted=auto_submitted,
        attachments=tuple(attachments),
        inline=tuple(inline),
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


def _scrubbed(rendered: Rendered, addresses: Sequence[str], ctx: Context) -> Rendered:
    """The mail with each of these addresses replaced by the support address, in any case."""
    if not addresses:
        return rendered
    words = "|".join(re.escape(a) for a in sorted(set(addresses), key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.+-])(?:{words})(?![\w-])", re.IGNORECASE)

    def scrub(text: str) -> str:
        return pattern.sub(ctx.from_address, text)

    html = scrub(rendered.html) if rendered.html is not None else None
    return Rendered(scrub(rendered.subject), scrub(rendered.text), html)


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
    # A forgotten customer (`customers forget`) has no address left to write to.
    found = (session.get(Contact, i) for i in ids)
    return [c for c in found if c is not None and not is_forgotten(c)]


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


class Reached(NamedTuple):
    """Whom a mail to a ticket's customers reached: anyone at all, who was left out
    because a bounce marked their address failing, and whether the requester is the
    unverified sender (then the From as the mail named it, else "")."""

    written: bool
    left_out: list[failing.Bounced]
    unverified_from: str = ""


def _left_out_unverified(
    session: Session, ctx: Context, ticket: Ticket, template: str, contacts: Sequence[Contact]
) -> str:
    """The unverified sender stands for addresses nobody may write to: nothing goes there,
    and the ticket's history says so. The From it came with; "" when it is not among them."""
    if not any(unverified.is_unverified_sender(c) for c in contacts):
        return ""
    detail = f"{template}: unverified sender, its From names no single clean address"
    record_event(session, ticket, "system", "mail_not_sent", detail, ctx.clock())
    return unverified.from_text(session, ticket) or "?"


def _to_customers(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    template: str,
    context: Mapping[str, object],
    *,
    optional: bool,
    auto_submitted: str | None = "auto-replied",
    files: Sequence[Enclosure] = (),
    scrub: Sequence[str] = (),
) -> Reached:
    """One mail to the ticket's customers who take it: whether anyone was written to, and
    the failing ones left out."""
    everyone = _customers(session, ticket)
    left_out = _left_out_failing(session, ctx, ticket, template, everyone)
    nobody = _left_out_unverified(session, ctx, ticket, template, everyone)
    contacts = [
        c
        for c in everyone
        if not c.failing
        and not (optional and c.opted_out)
        and not unverified.is_unverified_sender(c)
    ]
    if not contacts:
        return Reached(False, left_out, nobody)
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
        attachments=[(f.filename, f.content_type, f.data) for f in files if not f.content_id],
        inline=[(f.filename, f.content_type, f.data, f.content_id) for f in files if f.content_id],
        scrub=scrub,
    )
    return Reached(True, left_out, nobody)


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


# --- the mails ------------------------------------------------------------------------------


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
        _left_out_failing(session, ctx, ticket, "acknowledgement", [contact])
        return
    if unverified.is_unverified_sender(contact):
        return  # nobody to thank: the pipeline sends none, and neither may anything else
    org = organisation(session, contact.organisation_id)
    context = {
        **_base_context(ctx, ticket),
        "contact": {"name": contact.name, "email": contact.email},
        # A personal organisation or the pool is no customer's name to show them.
        "org_name": org.name if org and org.kind == COMPANY else None,
    }
    _queue(
        session,
        ctx,
        "acknowledgement_on_behalf" if on_behalf else "acknowledgement",
        _language(ctx, contact),
        context,
        to=[contact.email],
        ticket=ticket,
        answering=None if on_behalf else mail.message_id,
        thread=() if on_behalf else mail.references,
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


def _listed(items: Sequence[Listed]) -> list[dict[str, object]]:
    return [{**item.view(), "reason": item.reason} for item in items]


def _person(name: str, email: str) -> dict[str, object]:
    """A sender as staff see them. A display name with an address in it (plain or RFC 2047
    encoded, it arrives decoded) could pass the mail off as ours or a colleague's: it is
    hidden, and the real address always shows."""
    hidden = "@" in name
    return {"name": "" if hidden else name, "email": email, "name_hidden": hidden}


def _references(session: Session, ticket: Ticket) -> list[str]:
    return lookups.references(session, [ticket.id or 0]).get(ticket.id or 0, [])


def _staff_context(
    session: Session, ctx: Context, ticket: Ticket, article: Article, org: Organisation
) -> dict[str, object]:
    """Who the customer is and what they wrote, for the staff notification."""
    requester = session.get(Contact, ticket.requester_id)
    # The tickets the requester's list would show: a pool's strangers are not counted.
    visible = visible_tickets(session, requester).subquery() if requester else None
    open_count = select(func.count()).select_from(visible) if visible is not None else None
    return {
        **_base_context(ctx, ticket),
        "organisation": org.name,
        "requester": _person(requester.name, requester.email) if requester else _person("", ""),
        "author": _person(article.from_name, article.from_addr),
        "text": article.text,
        "open_tickets": int(session.exec(open_count).one()) if open_count is not None else 0,
        "hours": supporthhmm(session, ctx, org),
        "comment_address": ctx.config.smtp.comment_address,
        "references": _references(session, ticket),
        # Our MTA marked the mail forged (verify.verify_customer), or its From names nobody
        # (mailgate.unverified): staff judge it.
        "warning": article.note if article.note.startswith(_WARNINGS) else "",
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
    chosen = _article_files(session, ctx, article)
    context = {**_staff_context(session, ctx, ticket, article, org), "event": event}
    context["attachments"] = _listed(chosen.listed)
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


@dataclass(frozen=True)
class Change:
    """What the same staff mail changed besides answering: the status and priority before
    (None: the priority stayed); the ticket holds the new ones and the hold date."""

    old_status: str
    old_priority: str | None = None


def send_staff_answer(
    session: Session, ctx: Context, ticket: Ticket, article: Article, change: Change | None = None
) -> None:
    """An agent's answer to the customers of the ticket, from the support address, with the
    answer's files: the agent's own address appears nowhere. Not optional, so opted-out
    contacts get it too. A file the relay would refuse stays behind, and the agent is told.
    A change of status, priority or hold date made with it is told in the same mail."""
    chosen = _answer_files(session, ctx, ticket, article)
    context = {
        **_base_context(ctx, ticket),
        "text": article.text,
        # The agent signed ("Mit freundlichen Grüßen / Jana"): no second closing below it.
        "signed": is_signed(article.text),
        "change": _change_context(ctx, ticket, change),
        "images": [
            {"cid": f.content_id, "filename": f.filename} for f in chosen.files if f.content_id
        ],
        "not_attached": _listed(chosen.left_out),
    }
    # A person wrote this: no Auto-Submitted, so the customer's auto-responder may answer.
    reached = _to_customers(
        session,
        ctx,
        ticket,
        "staff_answer",
        context,
        optional=False,
        auto_submitted=None,
        files=chosen.files,
        # The last guard, whatever the signature heuristics missed: no agent's address.
        scrub=[*session.exec(select(Agent.email)), article.from_addr],
    )
    if reached.written and chosen.left_out:
        _files_not_sent(session, ctx, ticket, article, chosen.left_out)
    if (reached.left_out or reached.unverified_from) and article.from_addr:
        send_not_sent(
            session, ctx, ticket, article.from_addr, reached.left_out, reached.unverified_from
        )


def _answer_files(session: Session, ctx: Context, ticket: Ticket, article: Article) -> Chosen:
    """The answer's own files, within what the relay takes. An inline image that is already
    on the ticket is the customer's own, quoted back by the agent's client: it stays home."""
    earlier = select(Attachment.sha256).join(Article, col(Article.id) == Attachment.article_id)
    earlier = earlier.where(Article.ticket_id == ticket.id, Article.id != article.id)
    known = set(session.exec(earlier))
    files = [
        a for a in article_files(session, article.id or 0) if a.sha256 not in known or not a.inline
    ]
    budget = ctx.config.outbound.max_message_size - text_allowance(article.text, article.text)
    return choose(session, ctx.config.data_dir, files, budget)


def _files_not_sent(
    session: Session, ctx: Context, ticket: Ticket, article: Article, left: Sequence[Listed]
) -> None:
    """Tell the agent which files of their answer did not reach the customer, and why."""
    context = {
        "ticket": ticket_view(ctx, ticket),
        "files": _listed(left),
        "limit": ctx.config.outbound.max_message_size,
        "support_address": ctx.from_address,
    }
    _tell_agent(session, ctx, "attachments_not_sent", article.from_addr, ticket, context)


def _tell_agent(
    session: Session,
    ctx: Context,
    template: str,
    address: str,
    ticket: Ticket | None,
    context: Mapping[str, object],
    auto_submitted: str = "auto-generated",
) -> None:
    """A mail to an agent about what became of one of their mails: in their language,
    threaded with the ticket's mail."""
    agent = agent_by_email(session, address.lower())
    _queue(
        session,
        ctx,
        template,
        _language(ctx, agent),
        context,
        to=[address],
        ticket=ticket,
        thread=_thread(session, ticket)[1] if ticket else [],
        auto_submitted=auto_submitted,
    )


def send_not_sent(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    agent_address: str,
    bounces: Sequence[failing.Bounced],
    unverified_from: str = "",
) -> None:
    """Tell the agent their answer did not go to addresses a bounce marked failing (when
    it came, what it said, and how to clear the mark), or not to the ticket's unverified
    sender (the From it came with, and how to name the real customer)."""
    context = {
        **_base_context(ctx, ticket),
        "unverified_from": unverified_from,
        "addresses": [
            {"address": b.address, "bounced_at": local_time(ctx, b.at), "said": b.said}
            for b in bounces
        ],
        "timezone": ctx.config.tickets.timezone,
    }
    _tell_agent(session, ctx, "answer_not_sent", agent_address, ticket, context)


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
        "hold_until": _hold_day(ctx, ticket),
    }
    _to_customers(session, ctx, ticket, template, context, optional=True)


def _change_context(ctx: Context, ticket: Ticket, change: Change | None) -> dict[str, Any] | None:
    if change is None:
        return None
    old_priority = change.old_priority if change.old_priority != ticket.priority else None
    return {
        "old_status": change.old_status,
        "new_status": ticket.status,
        "old_priority": old_priority,
        "hold_until": _hold_day(ctx, ticket),
    }


def _hold_day(ctx: Context, ticket: Ticket) -> dict[str, int] | None:
    """The resubmission day of a ticket on hold, as the desk counts days; the templates
    write it out in the customer's language."""
    if ticket.status != "hold" or ticket.hold_until is None:
        return None
    day = aware(ticket.hold_until).astimezone(ZoneInfo(ctx.config.tickets.timezone)).date()
    return {"year": day.year, "month": day.month, "day": day.day}


@dataclass(frozen=True)
class CommandReport:
    """What became of an agent's mail: the commands refused (with the reason), those applied
    (as typed), and its text: `answered` (sent to the customer), `comment` (an internal
    comment), `stored` (on the ticket, nothing sent), `unverified` (kept as an unverified
    note, nothing applied or sent), `no_ticket` (on no ticket: nothing stored or sent)."""

    errors: Sequence[str]
    applied: Sequence[str]
    became: str


def send_command_errors(
    session: Session,
    ctx: Context,
    agent_address: str,
    ticket: Ticket | None,
    report: CommandReport,
    subject: str,
) -> None:
    """Tell an agent, in their language, which of their commands could not be applied and
    why, which were, and what became of their mail: only what really happened."""
    context = {
        "ticket": ticket_view(ctx, ticket) if ticket else None,
        # Phrases: the template's `say` filter words them in the template's language.
        "errors": list(report.errors),
        "applied": list(report.applied),
        "became": report.became,
        "subject": subject,
        "support_address": ctx.from_address,
    }
    _tell_agent(
        session, ctx, "command_error", agent_address, ticket, context, auto_submitted="auto-replied"
    )


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
    language, zone = _language(ctx, contact), ctx.config.tickets.timezone
    sheet = (f"tickets-{now:%Y-%m-%d}.xlsx", XLSX_TYPE, tickets_workbook(rows, language, zone))
    _queue(
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
    language = _language(ctx, contact) if contact else mail_language(mail, ctx.languages)
    _queue(
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
        "references": _references(session, ticket),
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
