"""The mail that carries a sign-in link for the web desk to the person who asked for it."""

from __future__ import annotations

from sqlmodel import Session

from mailgate.outbound.context import Context
from mailgate.outbound.sending import queue_mail
from mailgate.outbound.template_views import language_of
from mailgate.store.models import Agent, Contact

SIGN_IN_PATH = "/sign-in/"


def sign_in_link(ctx: Context, token: str) -> str:
    return f"{ctx.config.web.root}{SIGN_IN_PATH}{token}"


def mail_sign_in_link(session: Session, ctx: Context, person: Agent | Contact, token: str) -> None:
    """Queue an agent's or a customer's sign-in link, in their language, to their own
    address only."""
    context = {
        "name": person.name,
        "link": sign_in_link(ctx, token),
        "minutes": ctx.config.web.link_minutes,
        "support_address": ctx.from_address,
    }
    queue_mail(
        session,
        ctx,
        "sign_in",
        language_of(ctx, person),
        context,
        to=[person.email],
        auto_submitted="auto-generated",
    )
