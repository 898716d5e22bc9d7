"""Reminders: hold resubmission, confirmation reminder, closing unconfirmed tickets; once only."""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from mailgate.config import RemindersConfig, StaffConfig
from mailgate.desk.lifecycle import change_status
from mailgate.flows import reminders
from mailgate.outbound.context import Context
from mailgate.service import jobs
from mailgate.service.app import build_context
from mailgate.service.jobs import Every
from mailgate.store.models import (
    SENT,
    Agent,
    Contact,
    Event,
    Outbox,
    Participant,
    Ticket,
    TicketAgent,
)
from tests.conftest import Clock
from tests.daemon_harness import daemon_config as harness_config
from tests.daemon_harness import running
from tests.helpers import ingest, outbox, parsed, poll
from tests.mails import make_mail

TEAM = "team@example.com"


# --- building a known history -------------------------------------------------------------------


def configured(ctx: Context, **sections: object) -> Context:
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, **sections))


def new_ticket(ctx: Context, subject: str = "Printer broken", sender: str = "") -> int:
    mail = make_mail(subject=subject, sender=sender) if sender else make_mail(subject=subject)
    outcome = ingest(ctx, mail)
    assert outcome.created, outcome
    return int(outcome.cid.rpartition("-")[2])


def add_agent(ctx: Context, email: str, language: str | None = None, notify: bool = True) -> int:
    with ctx.store.session() as session:
        agent = Agent(
            email=email, name=email.split("@")[0].title(), language=language, notify=notify,
            created_at=ctx.clock(),
        )  # fmt: skip
        session.add(agent)
        session.flush()
        return agent.id or 0


def ticket_of(session: Session, number: int) -> Ticket:
    return session.exec(select(Ticket).where(Ticket.number == number)).one()


def assign(ctx: Context, number: int, assignee: int | None, *further: int) -> None:
    with ctx.store.session() as session:
        ticket = ticket_of(session, number)
        ticket.assignee_id = assignee
        session.add(ticket)
        for agent_id in further:
            session.add(TicketAgent(ticket_id=ticket.id or 0, agent_id=agent_id))


def move(ctx: Context, number: int, *statuses: str) -> None:
    """Status changes as an agent's commands make them, at the clock's time."""
    with ctx.store.session() as session:
        ticket = ticket_of(session, number)
        for status in statuses:
            change_status(session, ticket, status, "bob@example.com", ctx.clock())


def hold(ctx: Context, number: int, until: datetime) -> None:
    move(ctx, number, "working", "hold")
    with ctx.store.session() as session:
        ticket = ticket_of(session, number)
        ticket.hold_until = until
        session.add(ticket)


def load(ctx: Context, number: int) -> Ticket:
    with ctx.store.session() as session:
        return ticket_of(session, number)


def queued(ctx: Context, after: int = 0) -> list[tuple[str, str]]:
    """(template, recipients) of each mail queued after outbox id `after`."""
    return [(r.template, r.to_addrs) for r in outbox(ctx) if (r.id or 0) > after]


def mark(ctx: Context) -> int:
    rows = outbox(ctx)
    return (rows[-1].id or 0) if rows else 0


def events(ctx: Context, number: int, action: str) -> list[str]:
    with ctx.store.session() as session:
        ticket = ticket_of(session, number)
        query = select(Event.detail).where(Event.ticket_id == ticket.id, Event.action == action)
        return list(session.exec(query.order_by(col(Event.id))))


# --- hold resubmission ----------------------------------------------------------------------


def test_hold_reminder_goes_to_the_agents_once_and_the_ticket_stays_on_hold(
    ctx: Context, clock: Clock
) -> None:
    number = new_ticket(ctx)
    bob = add_agent(ctx, "bob@example.com")
    eva = add_agent(ctx, "eva@example.com", "de")
    quiet = add_agent(ctx, "quiet@example.com", notify=False)
    assign(ctx, number, bob, eva, quiet)
    hold(ctx, number, datetime(2026, 11, 5, tzinfo=UTC))
    before = mark(ctx)

    clock.now = datetime(2026, 11, 4, 23, 59, tzinfo=UTC)
    assert reminders.run_reminders(ctx) == 0
    clock.now = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
    assert reminders.run_reminders(ctx) == 1
    assert reminders.run_reminders(ctx) == 0  # a rerun sends nothing more

    assert queued(ctx, before) == [
        ("hold_reminder", "bob@example.com"),
        ("hold_reminder", "eva@example.com"),
    ]
    ticket = load(ctx, number)
    assert ticket.status == "hold"
    assert ticket.reminded_at is not None
    assert events(ctx, number, "reminder") == ["hold_reminder to staff"]
    bob_mail, eva_mail = (parsed(r.raw) for r in outbox(ctx) if (r.id or 0) > before)
    assert bob_mail["Subject"] == f"[CID-{number}] Resubmission due: Printer broken"
    assert eva_mail["Subject"] == f"[CID-{number}] Wiedervorlage fällig: Printer broken"
    assert bob_mail["Auto-Submitted"] == "auto-generated"
    # A new date as each reader writes dates (both forms are taken).
    assert "#hold YYYY-MM-DD" in bob_mail.get_body(("plain",)).get_content()
    assert "#hold TT.MM.JJJJ" in eva_mail.get_body(("plain",)).get_content()


def test_hold_reminder_without_agents_goes_to_the_team(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    number = new_ticket(ctx)
    hold(ctx, number, clock.now + timedelta(days=1))
    before = mark(ctx)
    clock.advance(days=1)
    reminders.run_reminders(ctx)
    assert queued(ctx, before) == [("hold_reminder", TEAM)]


def test_a_new_hold_spell_earns_a_new_reminder(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    number = new_ticket(ctx)
    hold(ctx, number, clock.now + timedelta(days=1))
    clock.advance(days=1)
    reminders.run_reminders(ctx)
    before = mark(ctx)
    hold(ctx, number, clock.now + timedelta(days=2))  # picked up, put on hold again
    clock.advance(days=1)
    assert reminders.run_reminders(ctx) == 0
    clock.advance(days=1)
    assert reminders.run_reminders(ctx) == 1
    assert queued(ctx, before) == [("hold_reminder", TEAM)]


# --- delivered tickets ------------------------------------------------------------------------


def add_contact(ctx: Context, number: int, email: str, **fields: object) -> None:
    with ctx.store.session() as session:
        ticket = ticket_of(session, number)
        contact = Contact(
            email=email, organisation_id=ticket.organisation_id, created_at=ctx.clock(), **fields
        )
        session.add(contact)
        session.flush()
        session.add(Participant(ticket_id=ticket.id or 0, contact_id=contact.id or 0))


def test_confirmation_reminder_reaches_the_delivered_mails_recipients_once(
    ctx: Context, clock: Clock
) -> None:
    number = new_ticket(ctx)
    add_contact(ctx, number, "carl@acme.example")
    add_contact(ctx, number, "gone@acme.example", failing=True)
    add_contact(ctx, number, "quiet@acme.example", opted_out=True)
    move(ctx, number, "working", "delivered")
    before = mark(ctx)

    clock.advance(days=3, seconds=-1)
    assert reminders.run_reminders(ctx) == 0
    clock.advance(seconds=1)  # default confirmation_days = 3
    assert reminders.run_reminders(ctx) == 1
    clock.advance(days=5)
    assert reminders.run_reminders(ctx) == 0  # once per delivery; auto-close is off

    (row,) = [r for r in outbox(ctx) if (r.id or 0) > before]
    assert row.template == "confirmation_reminder"
    message = parsed(row.raw)
    assert message["To"] == "alice@acme.example"
    assert message["Cc"] == "carl@acme.example"
    assert message["Subject"] == f"[CID-{number}] Reminder: Printer broken"
    assert message["Auto-Submitted"] == "auto-replied"
    assert load(ctx, number).status == "delivered"
    assert events(ctx, number, "reminder") == ["confirmation_reminder to customer"]


def test_no_confirmation_reminder_when_switched_off(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, reminders=RemindersConfig(confirmation_days=0))
    number = new_ticket(ctx)
    move(ctx, number, "working", "delivered")
    before = mark(ctx)
    clock.advance(days=30)
    assert reminders.run_reminders(ctx) == 0
    assert queued(ctx, before) == []


def test_unconfirmed_ticket_is_reminded_then_closed_by_the_system(
    ctx: Context, clock: Clock
) -> None:
    ctx = configured(ctx, reminders=RemindersConfig(confirmation_days=3, auto_close_days=7))
    number = new_ticket(ctx)
    move(ctx, number, "working", "delivered")
    before = mark(ctx)
    for _ in range(8):  # a run a day, as the job would
        clock.advance(days=1)
        reminders.run_reminders(ctx)

    assert queued(ctx, before) == [
        ("confirmation_reminder", "alice@acme.example"),
        ("closed", "alice@acme.example"),
    ]
    ticket = load(ctx, number)
    assert ticket.status == "closed"
    assert events(ctx, number, "status")[-1] == (
        "delivered -> closed (not confirmed within 7 days)"
    )
    with ctx.store.session() as session:
        actors = session.exec(
            select(Event.actor).where(Event.ticket_id == ticket.id, Event.action == "status")
        ).all()
    assert actors[-1] == "system"
    # The customer reads why it was closed without a word from them.
    closed = parsed(next(r.raw for r in outbox(ctx) if r.template == "closed"))
    text = " ".join(closed.get_body(("plain",)).get_content().split())
    assert "because we did not hear from you within 7 days of the solution" in text


def test_auto_close_is_off_by_default(ctx: Context, clock: Clock) -> None:
    number = new_ticket(ctx)
    move(ctx, number, "working", "delivered")
    clock.advance(days=365)
    reminders.run_reminders(ctx)
    assert load(ctx, number).status == "delivered"


def test_two_instances_at_once_remind_each_ticket_once(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    numbers = [new_ticket(ctx, subject=f"Question {i}") for i in range(6)]
    for number in numbers:
        hold(ctx, number, clock.now + timedelta(hours=1))
    before = mark(ctx)
    clock.advance(hours=2)
    start = threading.Barrier(2)
    counts: list[int] = []

    def instance() -> None:
        start.wait()
        counts.append(reminders.run_reminders(ctx))

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(counts) == 6
    assert queued(ctx, before) == [("hold_reminder", TEAM)] * 6


# --- the running daemon -----------------------------------------------------------------------


def test_running_daemon_schedules_the_jobs_and_sends_a_due_hold_reminder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.jobs")
    config = dataclasses.replace(harness_config(tmp_path), staff=StaffConfig(team_address=TEAM))
    setup = build_context(config)
    number = new_ticket(setup)
    hold(setup, number, setup.clock() - timedelta(minutes=1))
    setup.store.dispose()
    # Only the interval is shortened; the jobs are the ones the daemon builds from the config.
    monkeypatch.setattr(jobs, "REMINDER_INTERVAL", Every(0.1))

    with running(config) as daemon:

        def reminder_sent() -> bool:
            with daemon.ctx.store.session() as session:
                query = select(Outbox).where(
                    Outbox.template == "hold_reminder", Outbox.status == SENT
                )
                return session.exec(query).first() is not None

        poll(reminder_sent, what="the hold reminder to be sent")
    assert (
        "event=jobs_scheduled jobs=outbox-retry,left-over-messages,reminders,sla-escalation,"
        "ticket-counts,daily-digest" in caplog.text
    )
    sent = [parsed(p.read_bytes()) for p in Path(config.outbound.directory).glob("*.eml")]
    reminder = [m for m in sent if "Resubmission due" in str(m["Subject"])]
    assert [str(m["To"]) for m in reminder] == [TEAM]
