"""The number of tickets by category and status, as triggers keep it (migration 0024).

Each change to a ticket's category or status, and each ticket added or deleted, is a row
of +1 or -1 in ticket_tally: inserts only, so writers never wait for each other. The count
of a pair is the sum of its rows; `fold` sums them into one row a pair now and then."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, func, insert
from sqlmodel import Session, col, select

from mailgate.store.models import TicketTally

Pair = tuple[str | None, str]  # category (None: none), status


def counts(session: Session) -> dict[Pair, int]:
    """How many tickets each (category, status) has, pairs without tickets left out."""
    total = func.sum(TicketTally.tickets)
    query = (
        select(TicketTally.category, TicketTally.status, total)
        .group_by(col(TicketTally.category), col(TicketTally.status))
        .having(total != 0)
    )
    return {(category, status): int(n) for category, status, n in session.exec(query)}


def fold(session: Session) -> int:
    """Replace the rows by one a pair with tickets; returns how many rows there were.

    The rows summed are exactly the rows deleted (RETURNING): on PostgreSQL a change
    committed meanwhile by another transaction is not among them, and stays as it is."""
    rows = session.exec(select(func.count()).select_from(TicketTally)).one()
    pairs = select(TicketTally.category, TicketTally.status).distinct().subquery()
    if session.exec(select(func.count()).select_from(pairs)).one() == rows:
        return 0  # one row a pair already
    gone = session.execute(
        delete(TicketTally).returning(
            col(TicketTally.category), col(TicketTally.status), col(TicketTally.tickets)
        )
    ).all()
    sums: Counter[Pair] = Counter()
    for category, status, n in gone:
        sums[(category, status)] += n
    folded = [{"category": c, "status": s, "tickets": n} for (c, s), n in sums.items() if n]
    if folded:
        session.execute(insert(TicketTally), folded)
    return len(gone)
