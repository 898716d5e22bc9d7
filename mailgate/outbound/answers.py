"""An agent's answer sent on to the ticket's customers, with its files and the change it made."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from mailgate.outbound.agent_replies import files_not_sent, send_not_sent
from mailgate.outbound.context import Context
from mailgate.outbound.enclosures import (
    Chosen,
    Enclosure,
    article_files,
    choose,
    text_allowance,
)
from mailgate.outbound.recipients import to_customers
from mailgate.outbound.template_views import base_context, hold_day, listed_views
from mailgate.reading.signatures import is_signed
from mailgate.store.models import Agent, Article, Attachment, Ticket


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
    text = images_named(article.text, chosen.files)
    context = {
        **base_context(ctx, ticket),
        "text": text,
        # The agent signed ("Mit freundlichen Grüßen / Jana"): no second closing below it.
        "signed": is_signed(text),
        "change": _change_context(ctx, ticket, change),
        "images": [
            {"cid": f.content_id, "filename": f.filename} for f in chosen.files if f.content_id
        ],
        "not_attached": listed_views(chosen.left_out),
    }
    # A person wrote this: no Auto-Submitted, so the customer's auto-responder may answer.
    reached = to_customers(
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
        files_not_sent(session, ctx, ticket, article, chosen.left_out)
    if (reached.left_out or reached.unverified_from) and article.from_addr:
        send_not_sent(
            session, ctx, ticket, article.from_addr, reached.left_out, reached.unverified_from
        )


# Outlook's plain text marks where an inline image stood: "[cid:image001.png@01DA5B2C...]".
_IMAGE_PLACE = re.compile(r"([ \t]*)\[cid:([^\]\s]+)\]", re.IGNORECASE)


def images_named(text: str, files: Sequence[Enclosure]) -> str:
    """The answer's text with each image mark of the agent's mail client naming the image
    the customer gets ("[screenshot.png]"); a mark of an image that does not go with the
    answer (a signature's logo, the customer's own picture quoted back) is taken out."""
    if "[cid:" not in text.lower():
        return text
    names: dict[str, str] = {}
    for file in files:
        if file.content_id:
            # The whole content id, or (some clients) its part before the "@".
            cid = file.content_id.strip("<>").lower()
            names |= {cid.partition("@")[0]: file.filename, cid: file.filename}

    def named(mark: re.Match[str]) -> str:
        name = names.get(mark[2].lower())
        return f"{mark[1]}[{name}]" if name else ""

    marked = _IMAGE_PLACE.sub(named, text)
    return re.sub(r"\n{3,}", "\n\n", marked).strip("\n")


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


def _change_context(ctx: Context, ticket: Ticket, change: Change | None) -> dict[str, Any] | None:
    if change is None:
        return None
    old_priority = change.old_priority if change.old_priority != ticket.priority else None
    return {
        "old_status": change.old_status,
        "new_status": ticket.status,
        "old_priority": old_priority,
        "hold_until": hold_day(ctx, ticket),
    }
