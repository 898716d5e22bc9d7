"""Who a ticket's mail goes to and who is left out, and why: its customers, its agents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from mailgate.desk import unverified
from mailgate.desk.customers import remembered
from mailgate.desk.forgotten import is_forgotten
from mailgate.desk.tickets import WITHOUT_FURTHER_AGENTS, record_event
from mailgate.outbound import failing
from mailgate.outbound.context import Context
from mailgate.outbound.customer_links import CONTEXT_KEY, customer_links
from mailgate.outbound.enclosures import Enclosure
from mailgate.outbound.sending import Renderings, queue_mail, ticket_thread
from mailgate.outbound.template_views import language_of, local_time
from mailgate.store.models import Agent, Article, Contact, Participant, Ticket, TicketAgent

# Built once: asked for every ticket a customer writes to, and building a statement costs
# about as much again as running it.
_TICKET_AGENTS = select(TicketAgent.agent_id).where(TicketAgent.ticket_id == bindparam("ticket"))
_ANSWERED_BY = (
    select(Agent.id)
    .join(Article, Article.from_addr == Agent.email)
    .where(Article.ticket_id == bindparam("ticket"), Article.direction == "staff")
    .order_by(col(Article.id).desc())
)


def _customers(session: Session, ticket: Ticket) -> list[Contact]:
    """The requester first, then participants."""
    ids = [ticket.requester_id]
    query = select(Participant.contact_id).where(Participant.ticket_id == ticket.id)
    ids += [i for i in session.exec(query) if i not in ids]
    # A forgotten customer (`customers forget`) has no address left to write to.
    found = (session.get(Contact, i) for i in ids)
    return [c for c in found if c is not None and not is_forgotten(c)]


def left_out_failing(
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


def to_customers(
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
    left_out = left_out_failing(session, ctx, ticket, template, everyone)
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
    # One mail for everyone, in the language of whoever comes first (the requester); with
    # sign-in links, one copy each (the same To and Cc), each with its recipient's own link.
    answering, thread = ticket_thread(session, ticket)
    links = customer_links(session, ctx, ticket, contacts)
    copies = [(c.email, {CONTEXT_KEY: links[c.id or 0]}) for c in contacts] if links else []
    attachments = [(f.filename, f.content_type, f.data) for f in files if not f.content_id]
    inline = [(f.filename, f.content_type, f.data, f.content_id) for f in files if f.content_id]
    for recipient, link in copies or [("", {})]:
        queue_mail(
            session,
            ctx,
            template,
            language_of(ctx, contacts[0]),
            {**context, **link},
            to=[contacts[0].email],
            cc=[c.email for c in contacts[1:]],
            ticket=ticket,
            answering=answering,
            thread=thread,
            auto_submitted=auto_submitted,
            attachments=attachments,
            inline=inline,
            scrub=scrub,
            envelope=[recipient] if recipient else (),
        )
    return Reached(True, left_out, nobody)


def staff_recipients(session: Session, ctx: Context, ticket: Ticket) -> list[tuple[str, str]]:
    """The assignee and further agents who take notifications, else the team address, else
    the agents who answered the ticket (the latest first): (address, language) each."""
    ids = [ticket.assignee_id] if ticket.assignee_id else []
    if ticket.id not in remembered(session, WITHOUT_FURTHER_AGENTS):
        ids += session.exec(_TICKET_AGENTS, params={"ticket": ticket.id})
    found = _told(session, ctx, ids)
    team = ctx.config.staff.team_address
    if not found and team:
        found.append((team, language_of(ctx, None)))
    if not found and ticket.first_response_at is not None:  # else a reply would wait unseen
        found = _told(session, ctx, list(session.exec(_ANSWERED_BY, params={"ticket": ticket.id})))
    return found


def _told(session: Session, ctx: Context, ids: Sequence[int | None]) -> list[tuple[str, str]]:
    agents = [session.get(Agent, i) for i in dict.fromkeys(ids)]
    return [(a.email, language_of(ctx, a)) for a in agents if a and a.notify and a.active]


def to_staff(
    session: Session, ctx: Context, ticket: Ticket, template: str, context: dict[str, object]
) -> None:
    """One mail per agent of the ticket (else the team), threaded with the ticket."""
    thread = ticket_thread(session, ticket)[1]
    renderings: Renderings = {}
    for address, language in staff_recipients(session, ctx, ticket):
        queue_mail(
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
