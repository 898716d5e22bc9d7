"""First-response targets: when they fall due, and the one mail to staff when one is missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailgate.config import Config, SlaConfig, StaffConfig, TicketsConfig
from mailgate.desk import sla
from mailgate.flows import reminders
from mailgate.outbound.context import Context
from mailgate.store.models import Ticket
from tests.conftest import Clock
from tests.helpers import outbox, parsed
from tests.test_reminders import (
    TEAM,
    add_agent,
    assign,
    configured,
    events,
    load,
    mark,
    move,
    new_ticket,
    queued,
    ticket_of,
)

BERLIN = TicketsConfig(timezone="Europe/Berlin")


def berlin(*fields: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*fields, tzinfo=ZoneInfo("Europe/Berlin"))  # type: ignore[misc]


def due(priority: str, created: datetime, **sla_settings: object) -> datetime | None:
    cfg = Config(tickets=BERLIN, sla=SlaConfig(**sla_settings))  # type: ignore[arg-type]
    return sla.due_at(cfg, sla.Calendar.of(cfg), priority, created)


# --- when a target falls due -------------------------------------------------------------------


def test_two_business_days_from_friday_is_tuesday() -> None:
    friday = berlin(2026, 11, 27, 15, 0)
    assert due("C", friday) == berlin(2026, 12, 1, 15, 0)


def test_a_weekend_start_counts_from_monday_morning() -> None:
    saturday = berlin(2026, 11, 28, 10, 30)
    assert due("C", saturday, first_response={"C": "1bd"}) == berlin(2026, 12, 1, 0, 0)


def test_holidays_are_skipped() -> None:
    wednesday = berlin(2026, 12, 23, 11, 0)
    holidays = ["2026-12-24", "2026-12-25"]
    assert due("C", wednesday, holidays=holidays) == berlin(2026, 12, 29, 11, 0)


def test_business_days_are_counted_in_the_desk_time_zone() -> None:
    # 23:30 UTC on a Friday is already Saturday in Berlin: the count starts Monday 00:00 there.
    late_friday = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    assert due("C", late_friday, first_response={"C": "1bd"}) == berlin(2026, 12, 1, 0, 0)
    # Across the end of summer time the local hour stays, the UTC hour moves.
    before_change = berlin(2026, 10, 23, 15, 0)  # 13:00 UTC
    assert due("C", before_change) == datetime(2026, 10, 27, 14, 0, tzinfo=UTC)


def test_clock_targets_and_missing_targets() -> None:
    created = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # a Saturday: clock time runs on
    assert due("A", created) == created + timedelta(hours=2)
    assert due("B", created, first_response={"B": "30m"}) == created + timedelta(minutes=30)
    assert due("B", created, first_response={"A": "2h"}) is None


# --- the escalation job ------------------------------------------------------------------------


def prioritised(ctx: Context, priority: str) -> int:
    number = new_ticket(ctx)
    with ctx.store.session() as session:
        ticket = ticket_of(session, number)
        ticket.priority = priority
        session.add(ticket)
    return number


def set_first_response(ctx: Context, number: int, moment: datetime) -> None:
    with ctx.store.session() as session:
        ticket: Ticket = ticket_of(session, number)
        ticket.first_response_at = moment
        session.add(ticket)


def test_breach_is_told_to_the_agents_once(ctx: Context, clock: Clock) -> None:
    number = prioritised(ctx, "A")  # 2h
    bob = add_agent(ctx, "bob@example.com")
    eva = add_agent(ctx, "eva@example.com", "de")
    assign(ctx, number, bob, eva)
    before = mark(ctx)

    clock.advance(hours=1, minutes=59)
    assert reminders.escalate_breaches(ctx) == 0
    clock.advance(minutes=2)
    assert reminders.escalate_breaches(ctx) == 1
    clock.advance(hours=5)
    assert reminders.escalate_breaches(ctx) == 0

    assert queued(ctx, before) == [
        ("sla_breach", "bob@example.com"),
        ("sla_breach", "eva@example.com"),
    ]
    assert events(ctx, number, "sla_breach") == ["first response was due 2026-11-02 11:00 UTC"]
    assert load(ctx, number).sla_notified_at is not None
    bob_mail = parsed(next(r.raw for r in outbox(ctx) if r.template == "sla_breach"))
    assert bob_mail["Subject"] == f"[CID-{number}] First response overdue: Printer broken"
    assert "was due 2026-11-02 11:00 (UTC)" in bob_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_without_agents_the_team_is_told(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    prioritised(ctx, "B")  # 8h
    before = mark(ctx)
    clock.advance(hours=9)
    reminders.escalate_breaches(ctx)
    assert queued(ctx, before) == [("sla_breach", TEAM)]


def test_a_ticket_answered_in_time_is_never_escalated(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    number = prioritised(ctx, "A")
    set_first_response(ctx, number, clock.now + timedelta(hours=1))
    before = mark(ctx)
    clock.advance(days=10)
    assert reminders.escalate_breaches(ctx) == 0
    assert queued(ctx, before) == []


def test_answered_late_or_resolved_without_answer_is_no_longer_escalated(
    ctx: Context, clock: Clock
) -> None:
    # Escalation is to get an answer out: once there is one (or the ticket is solved), a
    # late mail about it would only be noise; reports still count the breach.
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    late = prioritised(ctx, "A")
    solved = prioritised(ctx, "A")
    clock.advance(hours=3)
    set_first_response(ctx, late, clock.now)
    move(ctx, solved, "working", "delivered")
    before = mark(ctx)
    assert reminders.escalate_breaches(ctx) == 0
    assert queued(ctx, before) == []


@pytest.mark.parametrize(
    ("hours_after", "notified"),
    [
        (24 * 3 + 5, False),  # Monday 14:00: due Tuesday 09:00
        (24 * 4 - 1, False),  # Tuesday 08:00
        (24 * 4 + 1, True),  # Tuesday 10:00
    ],
)
def test_priority_c_counts_two_business_days(
    ctx: Context, clock: Clock, hours_after: int, notified: bool
) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM), tickets=BERLIN)
    clock.now = berlin(2026, 11, 27, 9, 0).astimezone(UTC)  # Friday 09:00 in Berlin
    prioritised(ctx, "C")  # 2bd: due Tuesday 09:00
    before = mark(ctx)
    clock.advance(hours=hours_after)
    reminders.escalate_breaches(ctx)
    assert queued(ctx, before) == ([("sla_breach", TEAM)] if notified else [])


def test_closed_ticket_is_not_escalated(ctx: Context, clock: Clock) -> None:
    ctx = configured(ctx, staff=StaffConfig(team_address=TEAM))
    number = prioritised(ctx, "A")
    move(ctx, number, "closed")
    before = mark(ctx)
    clock.advance(hours=5)
    assert reminders.escalate_breaches(ctx) == 0
    assert queued(ctx, before) == []
