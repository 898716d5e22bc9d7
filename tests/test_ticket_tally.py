"""`stats` counts tickets by category and status from the changes triggers keep (migration
0024), not from the tickets: the counts follow every change a desk makes, the daemon's job
folds the changes without changing a count, and a desk migrated with tickets starts right."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from mailgate.config import load
from mailgate.service.app import build_context, build_transport
from mailgate.store import tally
from mailgate.store.models import Contact, Organisation, Ticket
from tests.mailroom import AGENT, Mailroom
from tests.mails import make_mail
from tests.test_jobs import Runtime, run_job_until
from tests.test_migrations import store_at


def rows_of(db_url: str, sql: str) -> list[Any]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def from_tickets(db_url: str) -> dict[str, Counter[str]]:
    """What the tickets themselves say: per category (None as "none") a count per status."""
    counted: dict[str, Counter[str]] = {}
    for category, status in rows_of(db_url, "SELECT category, status FROM ticket"):
        counted.setdefault(category or "none", Counter())[status] += 1
    return counted


def shown(room: Mailroom) -> dict[str, Counter[str]]:
    """What `mailgate stats` shows, in the same shape (statuses without tickets left out)."""
    categories: dict[str, Any] = room.json("stats")["by_category_status"]["categories"]
    return {
        name: Counter({s: n for s, n in row.items() if s != "total" and n})
        for name, row in categories.items()
    }


def tally_rows(db_url: str) -> int:
    return int(rows_of(db_url, "SELECT count(*) FROM ticket_tally")[0][0])


def agent_says(cid: str, body: str) -> bytes:
    return make_mail(sender=AGENT, subject=f"Re: [{cid}] Your request", body=body)


def test_stats_counts_follow_a_desks_tickets_and_survive_the_fold(
    room: Mailroom, db_url: str
) -> None:
    customers = ["anna@kunde.example", "ben@firma.example", "cleo@shop.example"]
    cids = [
        room.ingest(make_mail(sender=who, subject=f"Problem {i}")).split()[-1]
        for i, who in enumerate(customers)
    ]
    assert shown(room) == {"none": Counter(open=3)} == from_tickets(db_url)

    room.ingest(agent_says(cids[0], "#category billing\n#status closed\n\nDone."))
    room.ingest(agent_says(cids[1], "#category billing\n\nI am on it."))
    room.ingest(agent_says(cids[2], "#status hold 2026-12-24\n\nWaiting for the part."))
    room.ingest(agent_says(cids[2], "#category shop\n#priority A\n\nStill waiting."))
    counts = shown(room)
    assert counts == from_tickets(db_url)
    assert sum(counts["billing"].values()) == 2 and counts["billing"]["closed"] == 1
    assert counts["shop"] == Counter(hold=1) and "none" not in counts

    # The daemon's job sums the changes into one row a category and status.
    before = tally_rows(db_url)
    ctx = build_context(load(room.config))
    try:
        run_job_until(Runtime(ctx, build_transport(ctx.config)), "ticket-counts",
                      lambda: tally_rows(db_url) < before)  # fmt: skip
    finally:
        ctx.store.dispose()
    pairs = sum(len(statuses) for statuses in from_tickets(db_url).values())
    assert tally_rows(db_url) == pairs
    assert shown(room) == counts

    # After the fold, changes are counted as before: the closed ticket reopens by a reply,
    # a fourth ticket comes.
    room.ingest(make_mail(sender=customers[0], subject=f"Re: [{cids[0]}] Problem 0", body="Again!"))
    room.ingest(make_mail(sender="dora@kunde.example", subject="New one"))
    assert shown(room) == from_tickets(db_url)
    assert shown(room)["billing"]["closed"] == 0


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_migration_counts_the_tickets_a_desk_has(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = store_at(db, tmp_path, request, "0023")
    when = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with store.session() as session:
        org = Organisation(name="Acme", created_at=when)
        session.add(org)
        session.flush()
        person = Contact(email="a@acme.example", organisation_id=org.id, created_at=when)
        session.add(person)
        session.flush()
        pairs = [("billing", "open"), ("billing", "open"), (None, "closed"), ("shop", "hold")]
        for number, (category, status) in enumerate(pairs, start=1000):
            session.add(
                Ticket(number=number, subject="s", status=status, category=category,
                       organisation_id=org.id or 0, requester_id=person.id or 0, source="smtp",
                       created_at=when, updated_at=when, last_action_at=when)
            )  # fmt: skip
    store.upgrade()
    with store.session() as session:
        assert tally.counts(session) == {
            ("billing", "open"): 2,
            (None, "closed"): 1,
            ("shop", "hold"): 1,
        }
        # From here on the triggers count: a ticket's status changes.
        session.connection().execute(
            text("UPDATE ticket SET status = 'closed' WHERE number = 1000")
        )
        assert tally.counts(session)[("billing", "closed")] == 1
        assert tally.counts(session)[("billing", "open")] == 1
    store.dispose()


@pytest.mark.postgres
def test_a_fold_leaves_a_change_that_commits_meanwhile(postgres_url: str, tmp_path: Path) -> None:
    """Two daemons on one database: one folds while the other's batch has not committed."""
    from mailgate.store.database import Store

    store = Store(postgres_url)
    store.upgrade()
    insert = text("INSERT INTO ticket_tally (category, status, tickets) VALUES (NULL, 'open', 1)")
    with store.session() as session:
        for _ in range(3):
            session.connection().execute(insert)
    with store.engine.connect() as other:
        other.execute(insert)  # not committed while the fold runs
        with store.session() as session:
            assert tally.fold(session) == 3
        other.commit()
    with store.session() as session:
        assert tally.counts(session) == {(None, "open"): 4}
        assert tally.fold(session) == 2
        assert tally.fold(session) == 0  # nothing left to fold
        assert tally.counts(session) == {(None, "open"): 4}
    store.dispose()
