"""What one parsed, stored message does to the desk: routed, then a new ticket, a follow-up,
an answer or nothing; written, with the mails it causes asked of outbound."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from sqlmodel import Session

from mailgate.desk import unverified
from mailgate.desk.customers import (
    Sender,
    domain_of,
    ensure_contact,
    identify,
    organisation_for_domain,
)
from mailgate.desk.decisions import (
    Envelope,
    FollowUp,
    Ignore,
    ListRequest,
    NewTicket,
    Quarantine,
)
from mailgate.desk.route import route
from mailgate.desk.tickets import Applied, Opening, add_colleagues, add_follow_up, open_ticket
from mailgate.desk.web_access import SIGNED_IN_SOURCES
from mailgate.flows.replies import (
    StaffMail,
    after_customer_mail,
    after_staff_mail,
    read_staff_mail,
    written_text,
)
from mailgate.flows.staff_copies import without_staff_copies
from mailgate.outbound import failing, notify
from mailgate.outbound.context import Context
from mailgate.reading import tags
from mailgate.reading.language import mail_language
from mailgate.reading.parse import ParsedMail
from mailgate.reading.phrases import Phrase
from mailgate.reading.screen import screen
from mailgate.reading.verify import NOT_VERIFIED, verify_customer
from mailgate.store.models import DONE, IGNORED, QUARANTINED, Agent, Intake
from mailgate.store.spool import stored_raw

log = logging.getLogger("mailgate.pipeline")


@dataclass(frozen=True)
class Outcome:
    intake_id: int
    status: str  # done | ignored | quarantined | received (left for a later try)
    reason: str = ""
    cid: str = ""
    created: bool = False
    # The stored message's source (smtp, imap:<name>, pipe); empty when this call reached no
    # outcome of its own (already processed, no such message), so nothing is counted twice.
    source: str = ""

    def describe(self) -> str:
        if self.status == DONE and self.cid:
            warned = NOT_VERIFIED in self.reason or self.reason == unverified.REASON
            warning = f" ({self.reason})" if warned else ""
            return f"{'ticket' if self.created else 'reply'} {self.cid}{warning}"
        return f"{self.status}: {self.reason}" if self.reason else self.status


def served_envelope(ctx: Context, mail: ParsedMail, envelope_to: list[str]) -> Envelope:
    """The served address a mail came in on. Rule for several: the first served address in
    envelope order (else Delivered-To, X-Original-To, To, Cc); the comment address counts
    only when it is the only served address among them."""
    candidates = envelope_to or [*mail.delivered_to, *mail.to, *mail.cc]
    served = [a for a in dict.fromkeys(c.lower() for c in candidates) if ctx.config.smtp.serves(a)]
    comment = ctx.config.smtp.comment_address.lower()
    regular = [a for a in served if a != comment]
    if regular:
        return Envelope(served_address=regular[0])
    if comment and comment in served:
        return Envelope(served_address=comment, is_comment_address=True)
    return Envelope()


def apply(session: Session, ctx: Context, intake: Intake, mail: ParsedMail) -> Outcome:
    now = ctx.clock()
    sender = _doubted(session, ctx, intake, mail, identify(session, mail.from_addr))
    envelope = served_envelope(ctx, mail, [a for a in intake.envelope_to.splitlines() if a])
    key = ctx.secret_key
    screening = screen(mail, ctx.own_addresses, ctx.own_domain, key)
    decision = route(
        session, mail, intake, screening, sender, envelope, ctx.config, ctx.own_domain, key, now
    )
    if sender.contact is not None and sender.contact.failing and proves_address(decision, sender):
        failing.clear(session, sender.contact, mail.from_addr, "wrote again", now)
    if isinstance(decision, ListRequest):
        return _answer_list(session, ctx, intake, mail, sender)
    if isinstance(decision, Ignore) and decision.answer:
        notify.send_rejected_sender(session, ctx, mail.from_addr, mail.subject, mail.message_id)
    if isinstance(decision, Ignore | Quarantine):
        status = IGNORED if isinstance(decision, Ignore) else QUARANTINED
        return Outcome(intake.id or 0, status, decision.reason)
    if isinstance(decision, NewTicket):
        applied = _new_ticket(session, ctx, decision, intake, mail, sender, envelope)
        if applied is None:
            reason = "staff mail opened no ticket (no #customer line, or not verified)"
            return Outcome(intake.id or 0, IGNORED, reason)
    else:
        applied = _follow_up(session, ctx, decision, intake, mail, sender, envelope)
    intake.ticket_id, intake.article_id = applied.ticket.id, applied.article.id
    cid = tags.cid(ctx.config.tickets.prefix, applied.ticket.number)
    nobody = isinstance(decision, NewTicket) and decision.ambiguous_from
    reason = unverified.REASON if nobody else sender.unverified
    return Outcome(intake.id or 0, DONE, reason, cid, applied.created)


def _doubted(
    session: Session, ctx: Context, intake: Intake, mail: ParsedMail, sender: Sender
) -> Sender:
    """A customer with the warning our MTA's word against the mail gives (verify_customer);
    agents are verified where their commands are read."""
    if sender.agent is not None:
        return sender
    verdict = verify_customer(
        mail, lambda: stored_raw(session, intake.id or 0), ctx.config.security
    )
    if verdict.ok:
        return sender
    return dataclasses.replace(sender, unverified=f"{NOT_VERIFIED}: {verdict.reason}")


def _answer_list(
    session: Session, ctx: Context, intake: Intake, mail: ParsedMail, sender: Sender
) -> Outcome:
    """The list of open tickets, or a short answer. A question makes no contact, except for
    a sender of a domain the operator claimed: that one is a colleague already."""
    contact = sender.contact
    if contact is None and organisation_for_domain(session, domain_of(mail.from_addr)):
        contact = ensure_contact(
            session, mail.from_addr, mail.from_name, ctx.config.customers, ctx.clock()
        )
    if notify.send_ticket_list(session, ctx, contact, mail):
        return Outcome(intake.id or 0, IGNORED, "answered with the ticket list")
    return Outcome(intake.id or 0, IGNORED, "answered: no open tickets")


def proves_address(decision: object, sender: Sender) -> bool:
    """A customer's own mail (not automatic, not a bounce) shows their address works again:
    it clears a failing mark before anything answers it. A forged one proves nothing."""
    if sender.agent is not None or sender.unverified:
        return False
    if isinstance(decision, NewTicket):
        return decision.automatic is None
    if isinstance(decision, FollowUp):
        return decision.direction == "customer" and not decision.automatic
    return isinstance(decision, ListRequest)


def _new_ticket(
    session: Session,
    ctx: Context,
    decision: NewTicket,
    intake: Intake,
    mail: ParsedMail,
    sender: Sender,
    envelope: Envelope,
) -> Applied | None:
    """A customer's new request; or an agent's `#customer ADDRESS` for a customer who phoned
    (None when an agent's untagged mail names no customer: the agent is told)."""
    now, staff = ctx.clock(), None
    language = mail_language(mail, ctx.languages)
    opening = Opening(mail.from_addr, mail.from_name, language=language)
    if sender.agent is not None:
        staff = _staff_mail(session, ctx, intake, mail, envelope, sender.agent)
        customer = next((c.args for c in staff.commands if c.name == "customer"), None)
        if customer is None or not staff.verified:
            problems = list(staff.errors)
            if customer is None:
                problems.append(Phrase("customer_missing"))
            report = notify.CommandReport(problems, [], "no_ticket")
            notify.send_command_errors(session, ctx, sender.agent.email, None, report, mail.subject)
            return None
        # The agent's account of the call: kept for staff, not a mail the customer got.
        name = customer[1] if len(customer) > 1 else ""
        opening = Opening(customer[0], name, staff.text, "internal", opened_by=sender.agent.id)
    applied = open_ticket(session, decision, mail, intake, envelope, ctx.config, now, opening)
    if staff is not None and sender.agent is not None:
        # The customer was answered on the phone: the first response is the call itself.
        applied.ticket.first_response_at = now
        # #customer and #internal only tell how to read the mail: applied, they change nothing.
        noted = dataclasses.replace(staff, direction="internal")
        after_staff_mail(
            session,
            ctx,
            applied.ticket,
            applied.article,
            sender.agent,
            noted,
            mail,
            acknowledged=decision.automatic is None,
        )
    if staff is None and not decision.unverified:
        add_colleagues(session, applied.ticket, mail, ctx.config, now, ctx.own_addresses)
    # A forged mail is not acknowledged: that would write to its victim about it.
    if decision.automatic is None and applied.contact is not None and not decision.unverified:
        on_behalf = staff is not None
        notify.acknowledge(session, ctx, applied.ticket, applied.contact, mail, on_behalf)
    if decision.automatic is None and _others_to_tell(applied, sender):
        notify.notify_staff(session, ctx, applied.ticket, applied.article, "new")
    return applied


def _others_to_tell(applied: Applied, sender: Sender) -> bool:
    """A customer's new ticket is news to staff; one an agent opened is news only when
    routing gave it to someone else (the customer's responsible agent)."""
    if sender.agent is None:
        return True
    return applied.ticket.assignee_id not in (None, sender.agent.id)


def _staff_mail(
    session: Session,
    ctx: Context,
    intake: Intake,
    mail: ParsedMail,
    envelope: Envelope,
    agent: Agent,
    ticket_id: int | None = None,
) -> StaffMail:
    """An agent's mail read: from their mail client (verified by DKIM or our MTA's word), or
    written for them by the web desk they signed in to or by the JSON API for their token.
    On a ticket, what it answers goes without a copy of the ticket's mails to staff."""
    raw = stored_raw(session, intake.id or 0)
    signed_in = intake.source in SIGNED_IN_SOURCES

    def without_copies(text: str) -> str:
        return text if ticket_id is None else without_staff_copies(session, ticket_id, text)

    return read_staff_mail(
        mail, raw, ctx, envelope.is_comment_address, agent, signed_in, without_copies
    )


def _follow_up(
    session: Session,
    ctx: Context,
    decision: FollowUp,
    intake: Intake,
    mail: ParsedMail,
    sender: Sender,
    envelope: Envelope,
) -> Applied:
    """An article on the ticket, then what it causes: commands and answers for staff,
    confirmation or reopening for customers. Automatic mail causes nothing."""
    if decision.automatic or decision.direction == "system":
        return add_follow_up(session, decision, mail, intake, sender, ctx.config, ctx.clock())
    if sender.agent is not None:
        staff = _staff_mail(session, ctx, intake, mail, envelope, sender.agent, decision.ticket_id)
        decision = dataclasses.replace(decision, direction=staff.direction, note=staff.note)
        applied = add_follow_up(
            session, decision, mail, intake, sender, ctx.config, ctx.clock(), staff.text
        )
        after_staff_mail(session, ctx, applied.ticket, applied.article, sender.agent, staff, mail)
        return applied
    applied = add_follow_up(
        session, decision, mail, intake, sender, ctx.config, ctx.clock(), written_text(mail)
    )
    if decision.unverified:
        # A forged mail in a customer's name, or one from outside the ticket (a note).
        event: notify.StaffEvent = "outsider" if decision.direction == "internal" else "reply"
        notify.notify_staff(session, ctx, applied.ticket, applied.article, event)
        return applied
    if decision.direction == "customer":
        add_colleagues(session, applied.ticket, mail, ctx.config, ctx.clock(), ctx.own_addresses)
    after_customer_mail(
        session, ctx, applied.ticket, applied.article, applied.contact, mail, decision.reopen
    )
    return applied
