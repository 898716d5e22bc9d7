"""What one transaction remembers of its look-ups (senders, contacts, organisations), and
that processing a message reads each of them once."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlmodel import Session

from mailgate.desk.customers import contact_by_email, ensure_contact, identify
from mailgate.outbound.context import Context
from mailgate.store.models import Agent, Contact
from tests.helpers import ingest
from tests.mails import make_mail

BOB = "bob@acme.example"


def test_an_address_found_unknown_is_known_once_its_contact_is_added(ctx: Context) -> None:
    with ctx.store.session() as session:
        assert identify(session, BOB).contact is None
        bob = ensure_contact(session, BOB, "Bob", ctx.config.customers, ctx.clock())
        assert identify(session, BOB).contact is bob
        # Added some other way (an import, say): known all the same.
        eve = Contact(
            email="eve@acme.example", organisation_id=bob.organisation_id, created_at=ctx.clock()
        )
        assert contact_by_email(session, eve.email) is None
        session.add(eve)
        assert contact_by_email(session, eve.email) is eve


def test_an_address_found_no_agent_is_one_once_the_agent_is_added(ctx: Context) -> None:
    with ctx.store.session() as session:
        assert identify(session, BOB).agent is None
        agent = Agent(email=BOB, created_at=ctx.clock())
        session.add(agent)
        assert identify(session, BOB).agent is agent


def test_nothing_looked_up_outlives_a_rollback(ctx: Context) -> None:
    with Session(ctx.store.engine) as session:
        ensure_contact(session, BOB, "Bob", ctx.config.customers, ctx.clock())
        session.rollback()
        assert contact_by_email(session, BOB) is None
        savepoint = session.begin_nested()
        ensure_contact(session, BOB, "Bob", ctx.config.customers, ctx.clock())
        savepoint.rollback()
        assert contact_by_email(session, BOB) is None


def test_nothing_looked_up_outlives_a_commit(ctx: Context) -> None:
    with Session(ctx.store.engine) as session:
        assert contact_by_email(session, BOB) is None
        session.commit()
        with ctx.store.session() as other:  # another transaction adds the contact
            ensure_contact(other, BOB, "Bob", ctx.config.customers, ctx.clock())
        found = contact_by_email(session, BOB)
        assert found is not None and found.email == BOB


@pytest.fixture
def statements(ctx: Context) -> Iterator[list[str]]:
    """The SQL the test runs, one line each."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(ctx.store.engine, "before_cursor_execute", record)
    yield seen
    event.remove(ctx.store.engine, "before_cursor_execute", record)


def reads(seen: list[str]) -> Counter[str]:
    """SELECTs by the table they read."""
    return Counter(m[1] for s in seen if (m := re.match(r"SELECT .*? FROM (\w+)", s)) is not None)


def test_a_new_ticket_reads_its_sender_organisation_and_counter_once(
    ctx: Context, statements: list[str]
) -> None:
    ingest(ctx, make_mail(sender=f"Bob <{BOB}>", subject="First"))
    statements.clear()
    ingest(
        ctx,
        make_mail(
            sender=f"Bob <{BOB}>", subject="Second", attachments=(("a.txt", "text/plain", b"A"),)
        ),
    )
    counted = reads(statements)
    assert counted["agent"] == 1  # the sender, and again as the acknowledgement's recipient
    assert counted["contact"] == 1  # the sender, and again as the new ticket's requester
    assert counted["organisation"] == 1  # routing, the acknowledgement, the staff mail
    assert counted["counter"] == 0 and counted["blob"] == 0  # updated, inserted at once
    assert not any(s.startswith("UPDATE intake SET automatic") for s in statements)


def test_a_reply_reads_its_ticket_once(ctx: Context, statements: list[str]) -> None:
    ingest(ctx, make_mail(subject="Printer broken"))
    statements.clear()
    ingest(ctx, make_mail(subject="Re: [CID-1000] Printer broken"))
    assert reads(statements)["ticket"] == 1
