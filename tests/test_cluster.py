"""Several instances on one PostgreSQL database: a stored message is processed by one, a
mailbox is polled by one (and taken over when it dies), a job run runs on one."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Clock, make_config
from helpers import poll, tickets
from mails import make_mail
from sqlalchemy import text
from sqlmodel import select

from mailgate.flows.pipeline import process
from mailgate.outbound.context import Context
from mailgate.service.app import build_context
from mailgate.service.jobs import Every, Job, Scheduler
from mailgate.store.locks import AdvisoryLock
from mailgate.store.models import DONE, RECEIVED, Intake
from mailgate.store.spool import accept

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_ctx(tmp_path: Path, postgres_url: str, clock: Clock) -> Iterator[Context]:
    ctx = dataclasses.replace(build_context(make_config(tmp_path, postgres_url)), clock=clock)
    try:
        yield ctx
    finally:
        ctx.store.dispose()


def test_a_message_another_instance_is_processing_is_skipped_not_doubled(
    pg_ctx: Context,
) -> None:
    stored = accept(pg_ctx.store, make_mail(), "smtp", pg_ctx.clock())
    # Another instance has taken the message: its transaction holds the row.
    with pg_ctx.store.engine.connect() as other:
        other.execute(
            text("SELECT id FROM intake WHERE id = :id FOR UPDATE"), {"id": stored.intake_id}
        )
        outcome = process(pg_ctx, stored.intake_id)
        assert (outcome.status, outcome.reason) == (RECEIVED, "being processed by another instance")
        assert outcome.source == ""  # nothing reached here: nothing to count
        with pg_ctx.store.session() as session:
            assert session.get(Intake, stored.intake_id).status == RECEIVED  # type: ignore[union-attr]
        other.rollback()  # that instance died before finishing
    outcome = process(pg_ctx, stored.intake_id)
    assert outcome.status == DONE and outcome.created
    assert len(tickets(pg_ctx)) == 1
    with pg_ctx.store.session() as session:
        assert session.exec(select(Intake.status)).all() == [DONE]


def test_an_advisory_lock_has_one_holder_and_passes_on_when_it_dies(pg_ctx: Context) -> None:
    first = AdvisoryLock(pg_ctx.store, "imap-mailbox:support")
    second = AdvisoryLock(pg_ctx.store, "imap-mailbox:support")
    other_name = AdvisoryLock(pg_ctx.store, "imap-mailbox:sales")
    assert first.try_acquire() and first.still_held()
    assert not second.try_acquire()
    assert other_name.try_acquire()  # each mailbox has a lock of its own
    # The holder's database session ends (its process was killed): the server lets go.
    high, low = (first.key >> 32) & 0xFFFFFFFF, first.key & 0xFFFFFFFF
    with pg_ctx.store.engine.connect() as admin:
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid)"
            ),
            {"high": high, "low": low},
        )
        admin.commit()
    assert poll(second.try_acquire, timeout=10, what="the lock to pass on")
    assert not first.still_held()  # the old holder learns it lost the lock
    assert not first.try_acquire()
    second.release()
    assert first.try_acquire()
    first.release()
    other_name.release()


def test_a_job_running_on_another_instance_is_not_run_again(pg_ctx: Context) -> None:
    ran: list[str] = []

    async def work(_rt: object) -> None:
        ran.append("ran")

    job = Job("reminders", "test", Every(60), work)
    runtime = SimpleNamespace(ctx=pg_ctx)
    elsewhere = AdvisoryLock(pg_ctx.store, "job:reminders")
    assert elsewhere.try_acquire()
    asyncio.run(Scheduler(runtime, [job])._guarded(job))  # type: ignore[arg-type]
    assert ran == []
    elsewhere.release()
    asyncio.run(Scheduler(runtime, [job])._guarded(job))  # type: ignore[arg-type]
    assert ran == ["ran"]
