"""The status machine, applying staff commands to a stored ticket, customer replies."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from mailgate.config import CustomersConfig
from mailgate.desk.agents import add_agent
from mailgate.desk.lifecycle import (
    CommandOutcome,
    IllegalTransition,
    apply_commands,
    change_status,
    check_transition,
    customer_reply_status,
)
from mailgate.outbound.context import Context
from mailgate.reading.commands import parse_commands
from mailgate.store.models import (
    STATUSES,
    Agent,
    Contact,
    Event,
    Participant,
    Ticket,
    TicketAgent,
    TimeEntry,
)
from tests.helpers import Clock, ingest
from tests.mails import make_mail

LEGAL = {
    ("open", "working"),
    ("open", "hold"),
    ("open", "delivered"),
    ("open", "closed"),
    ("working", "hold"),
    ("working", "delivered"),
    ("working", "closed"),
    ("working", "open"),
    ("hold", "working"),
    ("hold", "delivered"),
    ("hold", "closed"),
    ("hold", "open"),
    ("delivered", "working"),
    ("delivered", "closed"),
    ("delivered", "open"),
    ("closed", "open"),
    ("closed", "working"),
}
PAIRS = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if a != b]
AGENT = "bob@example.com"


@pytest.mark.parametrize(("old", "new"), [p for p in PAIRS if p in LEGAL])
def test_legal_transitions(old: str, new: str) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), [p for p in PAIRS if p not in LEGAL])
def test_illegal_transitions(old: str, new: str) -> None:
    with pytest.raises(IllegalTransition, match=f"cannot go from {old} to {new}"):
        check_transition(old, new)


def test_closed_says_reopen_first() -> None:
    with pytest.raises(IllegalTransition) as exc:
        check_transition("closed", "delivered")
    assert str(exc.value) == "cannot go from closed to delivered (reopen it first)"


@pytest.mark.parametrize("status", STATUSES)
def test_same_status_is_allowed(status: str) -> None:
    check_transition(status, status)


def test_unknown_status() -> None:
    with pytest.raises(IllegalTransition, match="is not a status"):
        check_transition("open", "finished")


# --- on a stored ticket ---------------------------------------------------------------


@pytest.fixture
def ticket_id(ctx: Context) -> int:
    outcome = ingest(ctx, make_mail())
    assert outcome.created
    with ctx.store.session() as session:
        add_agent(session, AGENT, "Bob Builder", "en", ctx.clock())
        add_agent(session, "alice@example.com", "Alice Smith", "de", ctx.clock())
        ticket = session.exec(select(Ticket)).one()
        assert ticket.id is not None
        return ticket.id


def run(ctx: Context, ticket_id: int, text: str) -> CommandOutcome:
    parsed = parse_commands(text)
    assert parsed.errors == ()
    with ctx.store.session() as session:
        ticket = session.get(Ticket, ticket_id)
        agent = session.exec(select(Agent).where(Agent.email == AGENT)).one()
        assert ticket is not None
        return apply_commands(
            session, ticket, parsed.commands, agent, CustomersConfig(), ctx.clock()
        )


def load(ctx: Context, ticket_id: int) -> Ticket:
    with ctx.store.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


def events(ctx: Context, ticket_id: int, action: str) -> list[tuple[str, str]]:
    with ctx.store.session() as session:
        query = (
            select(Event)
            .where(Event.ticket_id == ticket_id, Event.action == action)
            .order_by(col(Event.id))
        )
        return [(e.actor, e.detail) for e in session.exec(query)]


def utc(moment: datetime | None) -> datetime | None:
    """SQLite returns stored datetimes without their zone; they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def set_status(ctx: Context, ticket_id: int, status: str) -> None:
    with ctx.store.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.status = status
        session.add(ticket)


def test_change_status_records_an_event(ctx: Context, ticket_id: int) -> None:
    with ctx.store.session() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        assert change_status(session, ticket, "working", "cli", ctx.clock(), "by hand")
        assert not change_status(session, ticket, "working", "cli", ctx.clock())
        with pytest.raises(IllegalTransition):
            change_status(session, ticket, "bogus", "cli", ctx.clock())
    assert load(ctx, ticket_id).status == "working"
    assert events(ctx, ticket_id, "status") == [("cli", "open -> working (by hand)")]


def test_status_and_last_action(ctx: Context, ticket_id: int) -> None:
    ctx.clock.advance(hours=1)  # type: ignore[attr-defined]
    outcome = run(ctx, ticket_id, "#status working")
    assert outcome.applied == ["status: open -> working"]
    assert outcome.status_changed == ("open", "working")
    ticket = load(ctx, ticket_id)
    assert ticket.status == "working"
    assert ticket.last_action_by == "staff"
    assert utc(ticket.last_action_at) == ctx.clock()
    assert utc(ticket.updated_at) == ctx.clock()
    assert events(ctx, ticket_id, "status") == [(AGENT, "open -> working")]


def test_same_status_is_a_no_op(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#status open")
    assert (outcome.applied, outcome.errors, outcome.status_changed) == ([], [], None)
    assert events(ctx, ticket_id, "status") == []


def test_deliver_then_close(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#deliver")
    assert outcome.delivered and not outcome.closed
    outcome = run(ctx, ticket_id, "#close")
    assert outcome.closed and outcome.status_changed == ("delivered", "closed")
    assert load(ctx, ticket_id).status == "closed"


def test_illegal_transition_is_an_error(ctx: Context, ticket_id: int) -> None:
    set_status(ctx, ticket_id, "closed")
    outcome = run(ctx, ticket_id, "#deliver #priority A")
    assert outcome.errors == ["#deliver: cannot go from closed to delivered (reopen it first)"]
    assert outcome.applied == ["priority: B -> A"]
    assert not outcome.delivered
    assert load(ctx, ticket_id).status == "closed"


def test_reopen(ctx: Context, ticket_id: int) -> None:
    set_status(ctx, ticket_id, "closed")
    outcome = run(ctx, ticket_id, "#reopen")
    assert outcome.status_changed == ("closed", "open")
    assert load(ctx, ticket_id).status == "open"
    # Reopening an open ticket leaves it alone.
    assert run(ctx, ticket_id, "#reopen").applied == []


def test_hold_with_date(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#hold 01.12.2026")
    assert outcome.applied == ["status: open -> hold until 2026-12-01"]
    ticket = load(ctx, ticket_id)
    assert ticket.status == "hold"
    assert utc(ticket.hold_until) == datetime(2026, 12, 1, tzinfo=UTC)
    assert events(ctx, ticket_id, "hold") == [(AGENT, "until 2026-12-01")]
    # Leaving hold forgets the resubmission date.
    run(ctx, ticket_id, "#status working")
    assert load(ctx, ticket_id).hold_until is None


def test_hold_date_is_a_day_of_the_desks_time_zone(
    ctx: Context, ticket_id: int, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)  # the 3rd already, in Berlin
    berlin = ZoneInfo("Europe/Berlin")
    with ctx.store.session() as session:
        ticket = session.get(Ticket, ticket_id)
        agent = session.exec(select(Agent).where(Agent.email == AGENT)).one()
        assert ticket is not None
        commands = parse_commands("#hold 2026-11-02\n#hold 2026-11-20").commands
        outcome = apply_commands(
            session, ticket, commands, agent, CustomersConfig(), clock(), berlin
        )
    assert outcome.errors == ["#hold 2026-11-02: 2026-11-02 is in the past"]
    # Midnight in Berlin, an hour before midnight UTC: reminders come at the desk's day start.
    assert utc(load(ctx, ticket_id).hold_until) == datetime(2026, 11, 19, 23, 0, tzinfo=UTC)


def test_hold_refuses_a_past_date_and_delivered(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#hold 2026-01-01")
    assert outcome.errors == ["#hold 2026-01-01: 2026-01-01 is in the past"]
    set_status(ctx, ticket_id, "delivered")
    outcome = run(ctx, ticket_id, "#hold 2026-12-01")
    assert outcome.errors == [
        "#hold 2026-12-01: cannot go from delivered to hold (set it to working first)"
    ]
    assert load(ctx, ticket_id).hold_until is None


def test_priority_type_category(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#prio hoch #typ fehler #kategorie Billing")
    assert outcome.applied == [
        "priority: B -> A",
        "type: none -> bug",
        "category: none -> Billing",
    ]
    assert outcome.priority_changed == ("B", "A")
    ticket = load(ctx, ticket_id)
    assert (ticket.priority, ticket.type, ticket.category) == ("A", "bug", "Billing")
    assert events(ctx, ticket_id, "priority") == [(AGENT, "B -> A")]
    assert events(ctx, ticket_id, "type") == [(AGENT, "none -> bug")]
    assert events(ctx, ticket_id, "category") == [(AGENT, "none -> Billing")]


@pytest.mark.parametrize("who", ["alice@example.com", "ALICE@example.com", "alice smith", "Alice"])
def test_assign_by_address_or_name(ctx: Context, ticket_id: int, who: str) -> None:
    outcome = run(ctx, ticket_id, f"#assign {who}")
    assert outcome.errors == []
    with ctx.store.session() as session:
        alice = session.exec(select(Agent).where(Agent.email == "alice@example.com")).one()
    assert load(ctx, ticket_id).assignee_id == alice.id
    assert events(ctx, ticket_id, "assigned")[-1] == (
        AGENT,
        f"alice@example.com (agent id {alice.id})",
    )


def test_assign_ambiguous_name(ctx: Context, ticket_id: int) -> None:
    with ctx.store.session() as session:
        add_agent(session, "alice.jones@example.com", "Alice Jones", None, ctx.clock())
    outcome = run(ctx, ticket_id, "#assign alice")
    assert outcome.errors == [
        '#assign alice: "alice" matches several agents '
        "(alice.jones@example.com, alice@example.com); use the address"
    ]


def test_partial_failure(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#assign nobody #priority A")
    assert outcome.errors == ['#assign nobody: no active agent is called "nobody"']
    assert outcome.applied == ["priority: B -> A"]
    ticket = load(ctx, ticket_id)
    assert ticket.priority == "A"
    assert ticket.last_action_by == "staff"


def test_cc_adds_a_participant(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#cc carol@acme.example")
    assert outcome.applied == ["cc: carol@acme.example added"]
    assert run(ctx, ticket_id, "#cc carol@acme.example").applied == []  # already there
    with ctx.store.session() as session:
        carol = session.exec(select(Contact).where(Contact.email == "carol@acme.example")).one()
        rows = list(session.exec(select(Participant)))
        requester = session.get(Contact, load(ctx, ticket_id).requester_id)
    assert [(p.ticket_id, p.contact_id, p.role) for p in rows] == [(ticket_id, carol.id, "cc")]
    # #cc shares this one ticket: it makes carol no colleague of the requester (no claim).
    assert requester is not None and carol.organisation_id != requester.organisation_id
    assert events(ctx, ticket_id, "cc") == [(AGENT, "carol@acme.example")]


def test_cc_of_an_agent_adds_a_further_agent(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#cc alice@example.com")
    assert (outcome.applied, outcome.errors) == (["agent alice@example.com added"], [])
    assert run(ctx, ticket_id, "#cc alice@example.com").applied == []  # already there
    with ctx.store.session() as session:
        further = list(session.exec(select(TicketAgent)))
        alice = session.exec(select(Agent).where(Agent.email == "alice@example.com")).one()
        contacts = session.exec(select(Contact).where(Contact.email == "alice@example.com"))
        assert contacts.all() == []  # an agent never becomes a customer contact
    assert [(t.ticket_id, t.agent_id) for t in further] == [(ticket_id, alice.id)]


def test_time_entries(ctx: Context, ticket_id: int) -> None:
    outcome = run(ctx, ticket_id, "#time 1h30 billable printer fixed\n#zeit 15m frei")
    assert outcome.applied == ["time: 90 min billable", "time: 15 min free"]
    with ctx.store.session() as session:
        entries = list(session.exec(select(TimeEntry).order_by(col(TimeEntry.id))))
        bob = session.exec(select(Agent).where(Agent.email == AGENT)).one()
    assert [(e.ticket_id, e.agent_id, e.minutes, e.billable, e.note) for e in entries] == [
        (ticket_id, bob.id, 90, True, "printer fixed"),
        (ticket_id, bob.id, 15, False, ""),
    ]
    assert load(ctx, ticket_id).billable
    assert events(ctx, ticket_id, "time") == [
        (AGENT, "90 min billable: printer fixed"),
        (AGENT, "15 min free"),
    ]


def test_billable_flag(ctx: Context, ticket_id: int) -> None:
    assert run(ctx, ticket_id, "#billable ja").applied == ["billable: yes"]
    assert load(ctx, ticket_id).billable
    assert run(ctx, ticket_id, "#billable no").applied == ["billable: no"]
    assert not load(ctx, ticket_id).billable
    assert events(ctx, ticket_id, "billable") == [(AGENT, "no -> yes"), (AGENT, "yes -> no")]


def test_internal_and_customer_only_flag_the_mail(ctx: Context, ticket_id: int) -> None:
    requester = "alice@acme.example"  # make_mail's sender opened the ticket
    outcome = run(ctx, ticket_id, f"#internal #customer {requester}")
    assert outcome.internal
    assert outcome.customer == requester
    assert load(ctx, ticket_id).last_action_by == "customer"


def test_customer_naming_another_on_a_customers_ticket_is_refused(
    ctx: Context, ticket_id: int
) -> None:
    outcome = run(ctx, ticket_id, "#customer dave@acme.example")
    assert outcome.customer is None
    assert [str(e) for e in outcome.errors] == [
        "#customer dave@acme.example: this ticket is already alice@acme.example's: #customer "
        "names the customer of a new mail or of an unverified sender's ticket (a contact "
        "changes company with `mailgate customers move`)"
    ]


# --- customer replies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "confirms", "expected"),
    [
        ("delivered", True, "close"),
        ("delivered", False, "working"),
        ("closed", True, "reopen"),
        ("closed", False, "reopen"),
        ("hold", False, None),
        ("open", True, None),
        ("working", False, None),
    ],
)
def test_customer_reply_status(status: str, confirms: bool, expected: str | None) -> None:
    ticket = Ticket(status=status)  # type: ignore[call-arg]
    assert customer_reply_status(ticket, confirms) == expected
