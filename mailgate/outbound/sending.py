"""The one path every mail takes: rendered, scrubbed, loop-checked, threaded and queued."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from sqlmodel import Session, select

from mailgate.desk.tickets import record_event
from mailgate.outbound import loops
from mailgate.outbound.compose import InvalidAddress, Outgoing, make_message_id, thread_index
from mailgate.outbound.context import Context
from mailgate.outbound.outbox import enqueue
from mailgate.outbound.render import Rendered
from mailgate.reading import tags
from mailgate.store.models import Article, Outbox, Ticket

log = logging.getLogger("mailgate.notify")

AttachmentData = tuple[str, str, bytes]
InlineData = tuple[str, str, bytes, str]
# One mail's renderings by language, shared by its recipients (one mail per agent).
Renderings = dict[str | None, Rendered]


def _conversation(ctx: Context, ticket: Ticket | None) -> tuple[tuple[str, str], ...]:
    """Outlook threads by Thread-Index and Thread-Topic rather than References."""
    if ticket is None:
        return ()
    index = thread_index(ticket.number, ticket.created_at, ctx.own_domain)
    topic = tags.strip_reply_prefixes(tags.strip_tags(ticket.subject, ctx.config.tickets.prefix))
    return (("Thread-Index", index), ("Thread-Topic", topic or ticket.subject))


def queue_mail(
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
    envelope: Sequence[str] = (),
) -> None:
    """Render, compose and queue one mail from the support address. `answering` is the id
    (without brackets) of the mail this one replies to; `thread` the earlier ids before it.
    `renderings`: what other recipients' copies of the same mail were rendered to; `scrub`:
    addresses that must not appear in the mail (replaced by the support address).
    `answers_recipient`: whether it answers its recipient's own mail (what a robot could
    call for again and again), not someone else's (an agent's #customer line).
    `envelope`: who gets this copy, when not everyone in To and Cc (outbound.compose)."""
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
        envelope=tuple(envelope),
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


def ticket_thread(session: Session, ticket: Ticket) -> tuple[str | None, list[str]]:
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
