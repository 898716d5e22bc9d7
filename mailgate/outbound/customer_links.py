"""The link under every mail to a customer that signs them in to their request on the web
desk: one for each recipient, never one that acts as someone else, working once within
[web] customer_link_days. None while the web desk is off or the links are turned off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session

from mailgate.desk.web_access import issue_link
from mailgate.outbound.context import Context
from mailgate.outbound.render import LINK_PARAGRAPH
from mailgate.outbound.sign_in_mail import sign_in_link
from mailgate.reading import tags
from mailgate.store.models import Contact, Ticket

CONTEXT_KEY = LINK_PARAGRAPH  # the templates' name for it (render.py adds its paragraph)


def customer_links(
    session: Session, ctx: Context, ticket: Ticket, contacts: Sequence[Contact]
) -> dict[int, str] | None:
    """Each contact's own link to the ticket, by contact id; None when mail carries none."""
    web = ctx.config.web
    if not (web.listen and web.customer_links):
        return None
    minutes = int(timedelta(days=web.customer_link_days).total_seconds() // 60)
    target = tags.cid(ctx.config.tickets.prefix, ticket.number)
    return {
        c.id or 0: f"{sign_in_link(ctx, issue_link(session, c, ctx.clock(), minutes))}?to={target}"
        for c in contacts
    }
