"""Messages in hand of a process that may die with them: marked before, counted after."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, update
from sqlmodel import col, select

from mailgate.store.database import Store, direct
from mailgate.store.locks import AdvisoryLock
from mailgate.store.models import RECEIVED, Intake


class Run:
    """This process's part in the marks: a name no other run has, and on PostgreSQL an
    advisory lock named after it, held while it lives, that tells other instances so."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.name = uuid.uuid4().hex[:16]
        self.lock = AdvisoryLock(store, f"run:{self.name}")
        self.lock.try_acquire()

    def mark(self, intake_ids: Sequence[int]) -> None:
        """Committed before processing begins: if the process dies, the mark stays."""
        if not self.lock.held:  # the database was away at the start
            self.lock.try_acquire()
        with self.store.session() as session:
            query = update(Intake).where(col(Intake.id).in_(intake_ids), _waiting())
            direct(session, query.values(in_hand_by=self.name))

    def end(self) -> None:
        """A clean stop: what this run marked and did not finish was not its death."""
        with self.store.session() as session:
            query = update(Intake).where(col(Intake.in_hand_by) == self.name)
            direct(session, query.values(in_hand_by=""))
        self.lock.release()


def count_deaths(store: Store, own: str = "") -> dict[int, int]:
    """Marks left by runs that are gone, each counted as one death and cleared; returns
    every waiting message with a death to its name, and how many."""
    with store.session() as session:
        marked = select(Intake.in_hand_by).where(_waiting(), col(Intake.in_hand_by) != "")
        holders = set(session.exec(marked.distinct())) - {own}
        gone = [holder for holder in holders if not _alive(store, holder)]
        if gone:
            died = update(Intake).where(_waiting(), col(Intake.in_hand_by).in_(gone))
            direct(session, died.values(in_hand_by="", deaths=col(Intake.deaths) + 1))
        suspects = select(Intake.id, Intake.deaths).where(_waiting(), col(Intake.deaths) > 0)
        return {intake_id or 0: deaths for intake_id, deaths in session.exec(suspects)}


def _alive(store: Store, holder: str) -> bool:
    """Whether the run is still at work. On SQLite only one daemon runs (instance.py), so
    any other run is gone; on PostgreSQL its lock is free once its process is."""
    if store.is_sqlite:
        return False
    lock = AdvisoryLock(store, f"run:{holder}")
    if lock.try_acquire():
        lock.release()
        return False
    return True


def _waiting() -> ColumnElement[bool]:
    return col(Intake.status) == RECEIVED
