"""Storing raw messages. Group commit: messages arriving together are stored by one commit,
each answered only once it is stored, duplicates stored once, a failed commit refused for all
of its messages. The content digest, hashed in slices, equals its definition."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from helpers import sqlite_locked
from hypothesis import given, settings
from hypothesis import strategies as st
from mails import make_mail
from sqlalchemy import event
from sqlmodel import Session, func, select

from mailgate.outbound.context import Context
from mailgate.store import spool
from mailgate.store.database import StoreUnavailable
from mailgate.store.models import Intake, IntakeRaw
from mailgate.store.spool import GroupCommit, Incoming, accept_many


def _incoming(ctx: Context, n: int) -> list[Incoming]:
    return [
        Incoming(make_mail(subject=f"request {i}"), "smtp", ctx.clock(), f"c{i}@example.org")
        for i in range(n)
    ]


def test_one_batch_stores_each_message_once_in_order(ctx: Context) -> None:
    first, second = _incoming(ctx, 2)
    results = accept_many(ctx.store, [first, second, first])
    assert [r.duplicate for r in results] == [False, False, True]
    assert results[0].intake_id == results[2].intake_id != results[1].intake_id
    again = accept_many(ctx.store, [second])
    assert again[0].intake_id == results[1].intake_id and again[0].duplicate
    with ctx.store.session() as session:
        rows = session.exec(select(Intake).order_by(Intake.id)).all()  # type: ignore[arg-type]
        raws = spool.stored_raws(session, [r.id or 0 for r in rows])
    assert [r.envelope_from for r in rows] == ["c0@example.org", "c1@example.org"]
    assert [raws[r.id or 0] for r in rows] == [first.raw, second.raw]


def test_concurrent_messages_share_commits(ctx: Context) -> None:
    commits: list[int] = []
    event.listen(ctx.store.durable_engine, "commit", lambda _conn: commits.append(1))
    messages = _incoming(ctx, 40)

    async def send_all() -> list[int]:
        committer = GroupCommit(ctx.store)
        results = await asyncio.gather(*(committer.accept(m) for m in messages))
        return [r.intake_id for r in results]

    ids = asyncio.run(send_all())
    assert len(set(ids)) == 40
    # All 40 were queued before the first commit began: one commit stored them all.
    assert len(commits) == 1
    with ctx.store.session() as session:
        stored = {r.id: r.envelope_from for r in session.exec(select(Intake))}
    assert [stored[i] for i in ids] == [m.envelope_from for m in messages]


def test_a_batch_that_cannot_be_stored_is_refused_for_every_message(
    sqlite_ctx: Context, tmp_path: Path
) -> None:
    messages = _incoming(sqlite_ctx, 5)

    async def send_all() -> list[object]:
        committer = GroupCommit(sqlite_ctx.store)
        return await asyncio.gather(
            *(committer.accept(m) for m in messages), return_exceptions=True
        )

    db = Path(sqlite_ctx.config.database.url.removeprefix("sqlite:///"))
    with sqlite_locked(db):
        outcomes = asyncio.run(send_all())
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    with sqlite_ctx.store.session() as session:
        assert session.exec(select(Intake)).all() == []


@pytest.mark.parametrize(("batch", "expected_commits"), [(1, 7), (3, 3)])
def test_batches_are_capped(ctx: Context, batch: int, expected_commits: int) -> None:
    commits: list[int] = []
    event.listen(ctx.store.durable_engine, "commit", lambda _conn: commits.append(1))
    messages = _incoming(ctx, 7)

    async def send_all() -> list[int]:
        committer = GroupCommit(ctx.store, max_batch=batch)
        return [r.intake_id for r in await asyncio.gather(*map(committer.accept, messages))]

    assert len(set(asyncio.run(send_all()))) == 7
    assert len(commits) == expected_commits


def _reference_digest(raw: bytes) -> str:
    """The definition: the body after the first blank line, CRLF as LF, trailing space cut."""
    normalised = raw.replace(b"\r\n", b"\n")
    _, sep, body = normalised.partition(b"\n\n")
    return hashlib.sha256(body.rstrip() if sep else b"").hexdigest()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b" ", b"\t", b"x\r\n"]), max_size=60),
    st.integers(min_value=1, max_value=9),
)
def test_content_digest_hashes_in_slices_as_if_normalised_whole(
    pieces: list[bytes], chunk: int
) -> None:
    raw = b"".join(pieces)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spool, "_DIGEST_CHUNK", chunk)  # slice edges fall inside CRLFs
        assert spool.content_digest(raw) == _reference_digest(raw)


def test_a_large_message_is_stored_in_its_transaction_and_read_back_as_it_came(
    ctx: Context,
) -> None:
    scan = (("scan.pdf", "application/pdf", os.urandom(3 << 20)),)
    big, small = make_mail(subject="Scan", attachments=scan), make_mail(subject="Frage")
    now = ctx.clock()

    def fails(_session: Session) -> None:
        raise RuntimeError("the IMAP state could not be written")

    with pytest.raises(RuntimeError):
        accept_many(ctx.store, [Incoming(big, "imap:support", now)], then=fails)
    with ctx.store.session() as session:
        assert session.exec(select(func.count()).select_from(IntakeRaw)).one() == 0

    stored = accept_many(ctx.store, [Incoming(big, "smtp", now), Incoming(small, "smtp", now)])
    ids = [s.intake_id for s in stored]
    with ctx.store.session() as session:
        assert [spool.stored_raw(session, i) for i in ids] == [big, small]
        assert spool.stored_raws(session, ids) == dict(zip(ids, [big, small], strict=True))
