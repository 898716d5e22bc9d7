"""Which mails an outcome causes, to whom, with which template and threading headers."""

from __future__ import annotations

from sqlmodel import Session

from mailgate import tags
from mailgate.compose import InvalidAddress, Outgoing, make_message_id
from mailgate.context import Context
from mailgate.models import Contact, Organisation, Ticket
from mailgate.outbox import enqueue
from mailgate.parse import ParsedMail
from mailgate.tickets import record_event


def ticket_view(ctx: Context, ticket: Ticket) -> dict[str, object]:
    prefix = ctx.config.tickets.prefix
    return {
        "cid": tags.cid(prefix, ticket.number),
        "number": ticket.number,
        # Without any tag of ours, so the template's own tag stands exactly once.
        "subject": tags.strip_tags(ticket.subject, prefix),
        "status": ticket.status,
    }


def acknowledge(
    session: Session, ctx: Context, ticket: Ticket, contact: Contact, mail: ParsedMail
) -> None:
    """Tell the customer their request has a number, threaded under their own mail."""
    if contact.failing:
        return
    org = session.get(Organisation, contact.organisation_id)
    language = contact.language or ctx.config.tickets.default_language
    rendered = ctx.renderer.render(
        "acknowledgement",
        language,
        {
            "ticket": ticket_view(ctx, ticket),
            "contact": {"name": contact.name, "email": contact.email},
            "support_address": ctx.from_address,
            "reply_hint": tags.format_tag(ctx.config.tickets.prefix, ticket.number),
            "org_name": org.name if org else None,
        },
    )
    references = (*mail.references, mail.message_id) if mail.message_id else mail.references
    outgoing = Outgoing(
        from_addr=ctx.config.outbound.from_,
        to=(contact.email,),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=make_message_id(ticket.number, ctx.own_domain),
        in_reply_to=f"<{mail.message_id}>" if mail.message_id else None,
        references=tuple(f"<{r}>" for r in references),
        reply_to=ctx.config.outbound.from_,
        auto_submitted="auto-replied",
    )
    try:
        enqueue(session, ctx, ticket.id, "acknowledgement", outgoing)
    except InvalidAddress as exc:
        # The ticket stands; only this mail cannot go out (e.g. an address our relay
        # cannot carry). Staff see why in the ticket's history.
        record_event(
            session, ticket, "system", "mail_not_sent", f"acknowledgement: {exc}", ctx.clock()
        )
