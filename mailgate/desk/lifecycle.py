"""The ticket status machine and applying staff commands to a ticket, in the caller's session."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from mailgate.config import CustomersConfig
from mailgate.desk.agents import find_agent
from mailgate.desk.customers import ensure_contact, remembered
from mailgate.desk.tickets import WITHOUT_FURTHER_AGENTS, record_event, set_status
from mailgate.desk.timebook import TimeRefused, book_time
from mailgate.desk.unverified import is_unverified_sender, set_customer
from mailgate.moments import aware, local_midnight
from mailgate.reading.addresses import valid_address
from mailgate.reading.commands import Command
from mailgate.reading.phrases import Phrase
from mailgate.store.models import STATUSES, Agent, Contact, Participant, Ticket, TicketAgent

UTC_ZONE = ZoneInfo("UTC")

# Where each status may go. Closed leaves only for open or working: by #reopen, #status open,
# #status working, or a customer's reply (routing decides whether that reopens or starts a
# new ticket). Staff mail without such a command leaves a closed ticket closed.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"working", "hold", "delivered", "closed"}),
    "working": frozenset({"hold", "delivered", "closed", "open"}),
    "hold": frozenset({"working", "delivered", "closed", "open"}),
    "delivered": frozenset({"working", "closed", "open"}),
    "closed": frozenset({"open", "working"}),
}


class IllegalTransition(ValueError):
    """A status change the machine does not allow, worded for the agent."""


def check_transition(old: str, new: str) -> None:
    if new not in STATUSES:
        raise IllegalTransition(Phrase("status_unknown", new=new, choices=", ".join(STATUSES)))
    if new == old or new in TRANSITIONS[old]:
        return
    hint = Phrase("reopen_first" if old == "closed" else "working_first")
    raise IllegalTransition(Phrase("no_transition", old=old, new=new, hint=hint))


def change_status(
    session: Session, ticket: Ticket, new_status: str, actor: str, now: datetime, reason: str = ""
) -> bool:
    """Move the ticket to `new_status`; False when it is there already."""
    old = ticket.status
    check_transition(old, new_status)
    if new_status == old:
        return False
    set_status(ticket, new_status, now)
    detail = f"{old} -> {new_status}" + (f" ({reason})" if reason else "")
    record_event(session, ticket, actor, "status", detail, now)
    session.add(ticket)
    return True


@dataclass
class CommandOutcome:
    """What apply_commands did, for the confirmation to the agent and the customer mails."""

    applied: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # the commands applied, as typed
    errors: list[str] = field(default_factory=list)
    internal: bool = False
    customer: str | None = None  # a #customer address: the pipeline applies it
    status_changed: tuple[str, str] | None = None
    priority_changed: tuple[str, str] | None = None
    hold_dated: bool = False  # a (new) resubmission date was set
    delivered: bool = False
    closed: bool = False


class Refused(ValueError):
    """A valid command that cannot be applied to this ticket."""


@dataclass
class _Run:
    session: Session
    ticket: Ticket
    agent: Agent
    now: datetime
    policy: CustomersConfig
    outcome: CommandOutcome
    zone: ZoneInfo  # the desk's: a hold date is a day there

    def event(self, action: str, detail: str) -> None:
        record_event(self.session, self.ticket, self.agent.email, action, detail, self.now)
        self.ticket.updated_at = self.now

    def status(self, new: str) -> str | None:
        old = self.ticket.status
        if not change_status(self.session, self.ticket, new, self.agent.email, self.now):
            return None
        first = self.outcome.status_changed[0] if self.outcome.status_changed else old
        self.outcome.status_changed = (first, new) if first != new else None
        self.outcome.delivered = self.outcome.delivered or new == "delivered"
        self.outcome.closed = self.outcome.closed or new == "closed"
        return f"status: {old} -> {new}"


def _status(run: _Run, cmd: Command) -> str | None:
    return run.status(cmd.args[0])


def _deliver(run: _Run, cmd: Command) -> str | None:
    return run.status("delivered")


def _close(run: _Run, cmd: Command) -> str | None:
    return run.status("closed")


def _reopen(run: _Run, cmd: Command) -> str | None:
    # Reopening a ticket that is in progress would only move it back to open: leave it.
    if run.ticket.status not in ("closed", "delivered"):
        return None
    return run.status("open")


def _hold(run: _Run, cmd: Command) -> str | None:
    day = date.fromisoformat(cmd.args[0])
    if day < run.now.astimezone(run.zone).date():
        raise Refused(Phrase("in_the_past", day=day.isoformat()))
    until = local_midnight(day, run.zone)
    check_transition(run.ticket.status, "hold")
    if run.ticket.status == "hold" and _same_moment(run.ticket.hold_until, until):
        return None
    changed = run.status("hold")
    run.ticket.hold_until = until
    run.ticket.reminded_at = None  # a new date earns a new reminder
    run.outcome.hold_dated = True
    run.event("hold", f"until {day.isoformat()}")
    return f"{changed or 'status: hold'} until {day.isoformat()}"


def _same_moment(stored: datetime | None, wanted: datetime) -> bool:
    # SQLite hands datetimes back without their zone; they were stored as UTC.
    if stored is None:
        return False
    return aware(stored) == wanted


def _field(name: str, label: str) -> Callable[[_Run, Command], str | None]:
    """A handler that sets one plain ticket field (priority, type, category)."""

    def handler(run: _Run, cmd: Command) -> str | None:
        old, new = getattr(run.ticket, name), cmd.args[0]
        if old == new:
            return None
        setattr(run.ticket, name, new)
        run.event(name, f"{old or 'none'} -> {new}")
        if name == "priority":
            first = run.outcome.priority_changed[0] if run.outcome.priority_changed else old
            run.outcome.priority_changed = (first, new) if first != new else None
        return f"{label}: {old or 'none'} -> {new}"

    return handler


def resolve_agent(session: Session, wanted: str) -> Agent:
    """An active agent by address, full name, first name or address local part, if unique."""
    address = valid_address(wanted)
    if address is not None:
        agent = find_agent(session, address)
        if agent is None or not agent.active:
            raise Refused(Phrase("no_agent_address", address=address))
        return agent
    key = wanted.strip().casefold()
    # Compared here, not in SQL: SQLite's lower() leaves non-ASCII letters (Jürgen) alone.
    agents = list(session.exec(select(Agent).where(Agent.active)))
    tiers = (
        [a for a in agents if a.name.casefold() == key],
        [
            a
            for a in agents
            if a.email.partition("@")[0] == key or a.name.casefold().split()[:1] == [key]
        ],
    )
    for matches in tiers:
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(sorted(a.email for a in matches))
            raise Refused(Phrase("several_agents", wanted=wanted, names=names))
    raise Refused(Phrase("no_agent_name", wanted=wanted))


def _assign(run: _Run, cmd: Command) -> str | None:
    agent = resolve_agent(run.session, cmd.args[0])
    if run.ticket.assignee_id == agent.id:
        return None
    run.ticket.assignee_id = agent.id
    run.event("assigned", f"{agent.email} (agent id {agent.id})")
    return f"assigned to {agent.name or agent.email} <{agent.email}>"


def _cc(run: _Run, cmd: Command) -> str | None:
    address = cmd.args[0]
    agent = find_agent(run.session, address)
    if agent is not None:
        return _add_agent(run, agent)
    name = cmd.args[1] if len(cmd.args) > 1 else ""
    contact = ensure_contact(run.session, address, name, run.policy, run.now)
    if contact.id == run.ticket.requester_id:
        return None
    if run.session.get(Participant, (run.ticket.id, contact.id)) is not None:
        return None
    run.session.add(Participant(ticket_id=run.ticket.id or 0, contact_id=contact.id or 0))
    run.event("cc", address)
    return f"cc: {address} added"


def _add_agent(run: _Run, agent: Agent) -> str | None:
    """An agent in #cc works on the ticket besides the assignee and is notified too."""
    if agent.id == run.ticket.assignee_id:
        return None
    if run.session.get(TicketAgent, (run.ticket.id, agent.id)) is not None:
        return None
    run.session.add(TicketAgent(ticket_id=run.ticket.id or 0, agent_id=agent.id or 0))
    remembered(run.session, WITHOUT_FURTHER_AGENTS).pop(run.ticket.id, None)
    run.event("agent", f"{agent.email} added")
    return f"agent {agent.email} added"


def _time(run: _Run, cmd: Command) -> str | None:
    minutes, kind = int(cmd.args[0]), cmd.args[1]
    note = cmd.args[2] if len(cmd.args) > 2 else ""
    try:
        book_time(
            run.session,
            run.ticket,
            run.agent,
            minutes,
            kind == "billable",
            note,
            run.agent.email,
            run.now,
        )
    except TimeRefused as exc:
        raise Refused(exc.args[0]) from None
    return f"time: {minutes} min {kind}" + (" (correction)" if minutes < 0 else "")


def _billable(run: _Run, cmd: Command) -> str | None:
    new = cmd.args[0] == "yes"
    if run.ticket.billable == new:
        return None
    run.ticket.billable = new
    run.event("billable", f"{'no -> yes' if new else 'yes -> no'}")
    return f"billable: {cmd.args[0]}"


def _internal(run: _Run, cmd: Command) -> str | None:
    run.outcome.internal = True
    return "internal: not sent to the customer"


def _customer(run: _Run, cmd: Command) -> str | None:
    requester = run.session.get(Contact, run.ticket.requester_id)
    if is_unverified_sender(requester):
        # The ticket of a mail whose From named nobody for sure: staff know now whose it is.
        name = cmd.args[1] if len(cmd.args) > 1 else ""
        contact = set_customer(run.session, run.ticket, cmd.args[0], name, run.policy, run.now)
        run.event("customer", f"unverified sender -> {contact.email}")
    elif requester is not None and requester.email.lower() != cmd.args[0].lower():
        # Another customer's ticket: moving a request between customers is not a mail's job.
        raise Refused(Phrase("customer_is_set", current=requester.email))
    run.outcome.customer = cmd.args[0]
    return f"customer: {cmd.args[0]}"


_HANDLERS: dict[str, Callable[[_Run, Command], str | None]] = {
    "status": _status,
    "hold": _hold,
    "deliver": _deliver,
    "close": _close,
    "reopen": _reopen,
    "priority": _field("priority", "priority"),
    "type": _field("type", "type"),
    "category": _field("category", "category"),
    "assign": _assign,
    "cc": _cc,
    "time": _time,
    "billable": _billable,
    "internal": _internal,
    "customer": _customer,
}
# These only tell the pipeline how to treat the mail; they do not act on the ticket.
_MAIL_ONLY = frozenset({"internal", "customer"})


def apply_commands(
    session: Session,
    ticket: Ticket,
    commands: Iterable[Command],
    agent: Agent,
    policy: CustomersConfig,
    now: datetime,
    zone: ZoneInfo = UTC_ZONE,
) -> CommandOutcome:
    """Apply each command in order; one that cannot be applied is an error, the rest apply.
    `zone` is the desk's ([tickets] timezone): `#hold DATE` holds until that day begins there."""
    run = _Run(session, ticket, agent, now, policy, CommandOutcome(), zone)
    acted = False
    for cmd in commands:
        handler = _HANDLERS.get(cmd.name)
        try:
            if handler is None:
                raise Refused(Phrase("unknown_command", known=", ".join(_HANDLERS)))
            line = handler(run, cmd)
        except (Refused, IllegalTransition) as exc:
            run.outcome.errors.append(Phrase("command", command=cmd.source, reason=exc.args[0]))
            continue
        run.outcome.accepted.append(cmd.source)
        if line:
            run.outcome.applied.append(line)
        acted = acted or cmd.name not in _MAIL_ONLY
    if acted:
        ticket.last_action_by = "staff"
        ticket.last_action_at = now
    session.add(ticket)
    return run.outcome


def customer_reply_status(
    ticket: Ticket, confirms: bool
) -> Literal["close", "reopen", "working", None]:
    """What a customer's reply does to the ticket's status; None when it stays as it is.
    `confirms`: the reply confirms a delivered ticket (mailgate.confirm)."""
    if ticket.status == "delivered":
        return "close" if confirms else "working"
    if ticket.status == "closed":
        return "reopen"
    # A ticket on hold keeps its status and resubmission date: only staff change those.
    return None
