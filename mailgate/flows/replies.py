"""What a mail on an existing ticket does: staff answers and commands, customer replies."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import Session

from mailgate.desk.agent_signatures import remember_ending, without_own_signature
from mailgate.desk.lifecycle import (
    CommandOutcome,
    IllegalTransition,
    apply_commands,
    change_status,
    customer_reply_status,
)
from mailgate.desk.notes import HELD, UNVERIFIED_AGENT
from mailgate.outbound import notify
from mailgate.outbound.context import Context
from mailgate.reading.commands import Command, parse_commands
from mailgate.reading.confirm import confirms
from mailgate.reading.parse import ParsedMail, once_per_mail
from mailgate.reading.phrases import Phrase
from mailgate.reading.quotes import strip_quotes
from mailgate.reading.signatures import cut_closing_block
from mailgate.reading.verify import Verdict, verify_agent
from mailgate.store.models import Agent, Article, Contact, Ticket


@dataclass(frozen=True)
class StaffMail:
    """An agent's mail read before anything is written: who, what to store, what to do."""

    verified: bool
    direction: str  # staff | internal
    note: str
    text: str  # without quoted history and command lines
    commands: tuple[Command, ...] = ()
    errors: tuple[str, ...] = ()
    quiet: bool = False  # marked internal by the agent: nothing of it reaches the customer
    written: str = ""  # the text before any signature was cut: what signatures are learned from


def read_staff_mail(
    mail: ParsedMail,
    raw: bytes,
    ctx: Context,
    to_comment_address: bool,
    agent: Agent,
    signed_in: bool = False,
    without_copies: Callable[[str], str] = lambda text: text,
) -> StaffMail:
    """Verify the agent, strip the quote, take the commands off the first lines. A mail that
    fails verification is kept as an internal note and none of its commands count.
    `without_copies`: the answer for the customer without what we told staff (a copy of a
    notification its client quoted in a way the quote cutting did not see).
    `signed_in`: the web desk wrote it for the agent signed in there, who is verified so."""
    text = written_text(mail)
    if signed_in:
        verdict = Verdict(True, "signed in to the web desk")
    else:
        verdict = verify_agent(mail, raw, ctx.config.security)
    if not verdict.ok:
        return StaffMail(
            False,
            "internal",
            f"{UNVERIFIED_AGENT}{verdict.reason}",
            text,
            errors=(Phrase("not_verified", reason=verdict.reason),),
            quiet=True,
        )
    parsed = parse_commands(text)
    internal = to_comment_address or any(c.name == "internal" for c in parsed.commands)
    # A command we do not know may be a mistyped `#internal` ("#interal"): its text, meant
    # perhaps for colleagues only, is kept as an internal comment, and the agent told.
    held = parsed.unknown and not internal
    direction = "internal" if internal or held else "staff"
    # For the customer: without a copy of what we told staff that the quote cutting missed.
    body = without_copies(parsed.body) if direction == "staff" else parsed.body
    # The agent's own signature goes, with their greeting: the desk's closing stands instead.
    body = without_own_signature(body, agent)
    # Mail clients put the agent's contact block under the greeting without a `-- `
    # separator; only the greeting and the name belong in what the customer reads.
    body = cut_closing_block(body)
    return StaffMail(
        True,
        direction,
        HELD if held else "",
        body,
        parsed.commands,
        parsed.errors,
        internal or held,
        parsed.body,
    )


def after_staff_mail(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    article: Article,
    agent: Agent,
    staff: StaffMail,
    mail: ParsedMail,
    acknowledged: bool = False,
) -> None:
    """Apply the commands, answer the customer (unless internal), tell the agent what failed,
    what was applied and what became of the mail. `acknowledged`: the customer is told of this
    ticket in the same transaction (a phoned-in request), so a plain change needs no mail of
    its own."""
    errors, accepted, became = list(staff.errors), list[str](), "unverified"
    if staff.verified:
        remember_ending(agent, staff.written)
        session.add(agent)
        commands, zone = list(staff.commands), ZoneInfo(ctx.config.tickets.timezone)
        outcome = apply_commands(
            session, ticket, commands, agent, ctx.config.customers, ctx.clock(), zone
        )
        errors += outcome.errors
        accepted = outcome.accepted
        answered = False
        # An internal comment (comment address, #internal) sends the customer nothing at
        # all, status mails included: that is what staff mean by it.
        if not staff.quiet:
            answered = staff.direction == "staff" and bool(staff.text.strip())
            if answered:
                news = _plain_change(ticket, outcome)
                notify.send_staff_answer(session, ctx, ticket, article, news)
                # What first-response targets measure: the first answer the customer received.
                ticket.first_response_at = ticket.first_response_at or ctx.clock()
            _status_mail(session, ctx, ticket, outcome, answered or acknowledged)
        became = _what_became(staff, answered)
    if errors:
        report = notify.CommandReport(errors, accepted, became)
        notify.send_command_errors(session, ctx, agent.email, ticket, report, mail.subject)


def _what_became(staff: StaffMail, answered: bool) -> str:
    """What the agent is told became of their mail's text (notify.CommandReport)."""
    if answered:
        return "answered"
    if staff.note == HELD and staff.text.strip():
        return "held"
    return "comment" if staff.direction == "internal" and staff.text.strip() else "stored"


def _plain_change(ticket: Ticket, outcome: CommandOutcome) -> notify.Change | None:
    """A change of status, priority or hold date that has no mail of its own (delivered,
    closed and reopened have theirs); None when there is none to tell."""
    if outcome.status_changed is None:
        # Re-sorting a closed ticket is bookkeeping: the customer's case is over.
        if not (outcome.priority_changed or outcome.hold_dated) or ticket.status == "closed":
            return None
        old = ticket.status
    else:
        old = outcome.status_changed[0]
        if old == "closed" or ticket.status in ("delivered", "closed"):
            return None
    old_priority = outcome.priority_changed[0] if outcome.priority_changed else None
    return notify.Change(old, old_priority)


def _status_mail(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    outcome: CommandOutcome,
    answered: bool,
) -> None:
    """Delivered, closed and reopened always have their own mail; a plain change of status,
    priority or hold date only when no answer went out with it: the answer tells it then."""
    change = outcome.status_changed
    if change is not None and (change[0] == "closed" or change[1] in ("delivered", "closed")):
        template = "reopened" if change[0] == "closed" else change[1]
        old_priority = outcome.priority_changed[0] if outcome.priority_changed else None
        notify.send_status_change(
            session, ctx, ticket, *change, template, old_priority=old_priority
        )
        return
    plain = _plain_change(ticket, outcome)
    if plain is None or answered:
        return
    notify.send_status_change(
        session, ctx, ticket, plain.old_status, ticket.status, old_priority=plain.old_priority
    )


def after_customer_mail(
    session: Session,
    ctx: Context,
    ticket: Ticket,
    article: Article,
    contact: Contact | None,
    mail: ParsedMail,
    reopened: bool,
) -> None:
    """Confirmation (mailgate.confirm), opt-out by the first line, reopening; then tell
    staff."""
    first = first_line(article.text)
    words = ctx.config.tickets
    if contact is not None and first in {w.lower() for w in words.optout_words}:
        contact.opted_out = True
        session.add(contact)
    now, actor = ctx.clock(), mail.from_addr
    if reopened:
        notify.send_status_change(session, ctx, ticket, "closed", ticket.status, "reopened")
    else:
        confirmed = ticket.status == "delivered" and confirms(
            article.text, words.confirm_words, words.confirm_blockers
        )
        step = customer_reply_status(ticket, confirmed)
        old = ticket.status
        try:
            if step == "close":
                change_status(session, ticket, "closed", actor, now, "customer confirmed")
                notify.send_status_change(session, ctx, ticket, old, "closed", "closed")
            elif step == "working":
                change_status(session, ticket, "working", actor, now, "customer replied")
            elif step == "reopen":
                change_status(session, ticket, "open", actor, now, "customer replied")
        except IllegalTransition:
            pass  # the customer's reply is stored either way; staff see it
    notify.notify_staff(session, ctx, ticket, article, "reply")


_FORWARD = re.compile(r"^\s*(fwd?|wg|tr|vs)\s*:", re.IGNORECASE)
# "VS:" forwards in Danish and Norwegian Outlook and answers in Finnish ("vastaus"), where a
# forward is "VL:". A Finnish client says so by its language tag or its header block.
_FINNISH = re.compile(r"^\s*[>*\s]*lähettäjä\s*:", re.IGNORECASE | re.MULTILINE)


def _forwarded(mail: ParsedMail) -> bool:
    prefix = _FORWARD.match(mail.subject)
    if prefix is None:
        return False
    if prefix.group(1).lower() != "vs":
        return True
    finnish = mail.headers.get("content-language", "").lower().startswith("fi")
    return not (finnish or _FINNISH.search(mail.text))


@once_per_mail
def written_text(mail: ParsedMail) -> str:
    """What the sender wrote, without the quoted history; a forward keeps what it forwards,
    since that is the point of it. An HTML-only mail is cut on its markup first; the text
    reader then finds what the markup did not show (a signature, a quote typed as text)."""
    if _forwarded(mail):
        return mail.text.strip()
    if mail.html_written is None:
        return strip_quotes(mail.text)
    # A forwarded original the markup showed is kept as it came: it is not the writer's
    # text, and its header lines would read as the start of a quote.
    own = strip_quotes(mail.html_written) if mail.html_written.strip() else ""
    return "\n\n".join(part for part in (own, mail.html_forwarded) if part)


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip().lower().rstrip(".!,;")
    return ""
