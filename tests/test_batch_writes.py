"""A batch's rows written together: each kind of row held back to one statement at the end,
read back where the batch asks for it, and nothing of a rolled-back try left over."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlmodel import col, select

from mailgate.flows.pipeline import process_batch
from mailgate.outbound.context import Context
from mailgate.reading.marks import bounce_outbox_id
from mailgate.store.database import direct
from mailgate.store.later import defer_writes, later
from mailgate.store.models import Event, Intake
from mailgate.store.spool import Incoming, accept_many
from tests.helpers import outbox, parsed, tickets
from tests.mails import make_mail

AUTO = {"Auto-Submitted": "auto-replied"}
ROBOT = "alice@acme.example"  # make_mail's sender


@contextmanager
def statements(ctx: Context) -> Iterator[Counter[str]]:
    """Statements sent to the database meanwhile, by their text (an executemany counts
    once)."""
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen[" ".join(statement.split())] += 1

    event.listen(ctx.store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(ctx.store.engine, "before_cursor_execute", count)


def sent_as(seen: Counter[str], start: str) -> int:
    return sum(n for statement, n in seen.items() if statement.startswith(start))


def stored(ctx: Context, *raws: bytes) -> list[int]:
    now = ctx.clock()
    return [a.intake_id for a in accept_many(ctx.store, [Incoming(r, "smtp", now) for r in raws])]


def test_a_batch_writes_outcomes_events_and_queued_mail_by_one_statement_each(
    ctx: Context,
) -> None:
    ids = stored(
        ctx, *(make_mail(sender=f"user{n}@shop{n}.example", subject=f"Q {n}") for n in range(12))
    )
    with statements(ctx) as seen:
        outcomes = process_batch(ctx, ids)
    assert [o.describe() for o in outcomes] == [f"ticket CID-{1000 + n}" for n in range(12)]
    for kind in (
        "INSERT INTO outbox (",
        "INSERT INTO outbox_recipient (",
        "UPDATE outbox SET",
        "INSERT INTO event",
        "UPDATE intake SET",
    ):
        assert sent_as(seen, kind) == 1, (kind, seen)
    assert sent_as(seen, "INSERT INTO ticket") == 12  # a ticket's number and id are needed at once

    # Each acknowledgement went to its sender, and its bounce address names its own row.
    sent = outbox(ctx)
    assert sorted(r.to_addrs for r in sent) == sorted(f"user{n}@shop{n}.example" for n in range(12))
    for row in sent:
        assert bounce_outbox_id(row.envelope_from, ctx.secret_key) == row.id
        mail = parsed(row.raw)
        assert mail["Message-ID"].strip("<>") == row.message_id
        number = re.search(r"\[CID-(\d+)\]", mail["Subject"])
        assert number is not None
        (ticket,) = [t for t in tickets(ctx) if t.id == row.ticket_id]
        assert ticket.number == int(number[1])
    with ctx.store.session() as session:
        done = session.exec(select(Intake.status, Intake.ticket_id).where(col(Intake.id).in_(ids)))
        assert {status for status, _ in done} == {"done"}
        created = session.exec(select(Event.ticket_id).where(Event.action == "created")).all()
        assert sorted(created) == sorted(t.id for t in tickets(ctx))


@pytest.mark.parametrize(("automatic", "held"), [(3, True), (2, False)])
def test_the_breaker_counts_automatic_mail_earlier_in_the_same_batch(
    ctx: Context, automatic: int, held: bool
) -> None:
    """The batch reads which senders sent automatic mail lately before any outcome of its
    own is written: the robot's mails in the batch count as they are processed."""
    robot = [make_mail(subject=f"Out of office {n}", headers=AUTO) for n in range(automatic)]
    question = make_mail(subject="A real question")
    other = make_mail(sender="bob@other.example", subject="Hello")
    outcomes = process_batch(ctx, stored(ctx, *robot, question, other))
    assert all(o.status == "done" for o in outcomes)
    acks = {r.to_addrs for r in outbox(ctx) if r.template == "acknowledgement"}
    assert acks == ({"bob@other.example"} if held else {ROBOT, "bob@other.example"})


def test_the_breaker_reads_a_later_batch_senders_automatic_mail_at_once(ctx: Context) -> None:
    process_batch(
        ctx, stored(ctx, *(make_mail(subject=f"Auto {n}", headers=AUTO) for n in range(3)))
    )
    question = make_mail(subject="A real question")
    other = make_mail(sender="bob@other.example", subject="Hello")
    with statements(ctx) as seen:
        process_batch(ctx, stored(ctx, question, other))
    acks = [r.to_addrs for r in outbox(ctx) if r.template == "acknowledgement"]
    assert acks == ["bob@other.example"]
    # The robot's mail was walked; the other sender's, who sent none, was not.
    assert sent_as(seen, "SELECT intake.id, intake.received_at, intake.automatic") == 1


def test_held_rows_are_read_back_before_a_read_of_their_table(ctx: Context) -> None:
    (ticket,) = [process_batch(ctx, stored(ctx, make_mail()))[0]]
    assert ticket.created
    rows = insert(Event.__table__)  # type: ignore[attr-defined]

    def write(session: Any, held: list[dict[str, object]]) -> None:
        direct(session, rows, held)

    with ctx.store.session() as session:
        defer_writes(session)
        (ticket_id,) = session.exec(select(Event.ticket_id)).all()
        for n in range(3):
            later(session, write, ("event",), _event(ticket_id, f"held {n}"))
        # By the ORM, by a plain statement and by SQL text: each sees what was held back.
        orm = session.exec(select(Event.detail).where(Event.action == "note")).all()
        assert orm == ["held 0", "held 1", "held 2"]
        later(session, write, ("event",), _event(ticket_id, "held 3"))
        plain = direct(session, select(Event.detail).where(Event.action == "note")).all()
        assert [d for (d,) in plain][-1] == "held 3"
        later(session, write, ("event",), _event(ticket_id, "held 4"))
        counted = session.execute(text("SELECT count(*) FROM event WHERE action = 'note'"))
        assert counted.scalar_one() == 5
        later(session, write, ("event",), _event(ticket_id, "at commit"))
    with ctx.store.session() as session:
        notes = session.exec(select(Event.detail).where(Event.action == "note")).all()
        assert notes[-1] == "at commit"


def test_held_rows_of_a_rolled_back_transaction_are_never_written(ctx: Context) -> None:
    process_batch(ctx, stored(ctx, make_mail()))
    rows = insert(Event.__table__)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), ctx.store.session() as session:
        defer_writes(session)
        (ticket_id,) = session.exec(select(Event.ticket_id)).all()
        later(session, lambda s, held: direct(s, rows, held), ("event",), _event(ticket_id, "x"))
        raise RuntimeError("the batch failed")
    with ctx.store.session() as session:
        assert session.exec(select(Event).where(Event.action == "note")).all() == []


def _event(ticket_id: int | None, detail: str) -> dict[str, object]:
    from datetime import UTC, datetime

    return {
        "ticket_id": ticket_id,
        "actor": "test",
        "action": "note",
        "detail": detail,
        "created_at": datetime.now(UTC),
    }
