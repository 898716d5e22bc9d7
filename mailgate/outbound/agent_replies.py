"""What became of an agent's mail, told back to them: commands, files, customers not reached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from mailgate.desk.customers import agent_by_email
from mailgate.outbound import failing
from mailgate.outbound.context import Context
from mailgate.outbound.enclosures import Listed
from mailgate.outbound.sending import queue_mail, ticket_thread
from mailgate.outbound.template_views import (
    base_context,
    language_of,
    listed_views,
    local_time,
    ticket_view,
)
from mailgate.store.models import Article, Ticket


def tell_agent(
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
    queue_mail(
        session,
        ctx,
        template,
        language_of(ctx, agent),
        context,
        to=[address],
        ticket=ticket,
        thread=ticket_thread(session, ticket)[1] if ticket else [],
        auto_submitted=auto_submitted,
    )


@dataclass(frozen=True)
class CommandReport:
    """What became of an agent's mail: the commands refused (with the reason), those applied
    (as typed), and its text: `answered` (sent to the customer), `comment` (an internal
    comment), `stored` (on the ticket, nothing sent), `held` (kept as an internal comment,
    nothing sent: a command was not understood), `unverified` (kept as an unverified
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
    tell_agent(
        session, ctx, "command_error", agent_address, ticket, context, auto_submitted="auto-replied"
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
        **base_context(ctx, ticket),
        "unverified_from": unverified_from,
        "addresses": [
            {"address": b.address, "bounced_at": local_time(ctx, b.at), "said": b.said}
            for b in bounces
        ],
        "timezone": ctx.config.tickets.timezone,
    }
    tell_agent(session, ctx, "answer_not_sent", agent_address, ticket, context)


def files_not_sent(
    session: Session, ctx: Context, ticket: Ticket, article: Article, left: Sequence[Listed]
) -> None:
    """Tell the agent which files of their answer did not reach the customer, and why."""
    context = {
        "ticket": ticket_view(ctx, ticket),
        "files": listed_views(left),
        "limit": ctx.config.outbound.max_message_size,
        "support_address": ctx.from_address,
    }
    tell_agent(session, ctx, "attachments_not_sent", article.from_addr, ticket, context)
