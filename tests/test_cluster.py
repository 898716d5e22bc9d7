"""Several instances on one PostgreSQL database: a stored message is processed by one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Clock, make_config
from helpers import tickets
from mails import make_mail
from sqlalchemy import text
from sqlmodel import select

from mailgate.app import build_context
from mailgate.context import Context
from mailgate.intake.spool import accept
from mailgate.models import DONE, RECEIVED, Intake
from mailgate.pipeline import process

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
