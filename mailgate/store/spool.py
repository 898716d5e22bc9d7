"""accept(): the only way mail enters. The raw bytes are committed before anyone says yes."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, text
from sqlmodel import Session, col, select

from mailgate.store.database import Store, direct
from mailgate.store.models import Intake, IntakeRaw


@dataclass(frozen=True)
class Accepted:
    intake_id: int
    duplicate: bool  # the very same bytes were stored before; nothing new was written


@dataclass(frozen=True)
class Incoming:
    """One message as it arrived, before it is stored."""

    raw: bytes
    source: str
    received_at: datetime
    envelope_from: str = ""
    envelope_to: Sequence[str] = ()
    # The digests of raw, when computed already (a second process of `mailgate ingest`).
    digests: Digests | None = None
    # Set when raw is only the header of a message too large to take: the whole one's size.
    whole_size: int | None = None


@dataclass(frozen=True)
class Digests:
    """What identifies a message's bytes: all of them, and its body alone."""

    sha256: str
    content_sha256: str

    @classmethod
    def of(cls, raw: bytes) -> Digests:
        return cls(hashlib.sha256(raw).hexdigest(), content_digest(raw))


CROWDING_SPAN = 10  # messages the crowding average reaches back over, about
# Messages from this size on are written into their row a piece at a time (_write_large).
_STREAMED = 1 << 20
_STREAM_PIECE = 1 << 20
_INSERT_ZEROES = text(
    "INSERT INTO intake_raw (intake_id, raw) VALUES (:intake_id, zeroblob(:size))"
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# Storing is plain statements, made once: intake's share of the core is what sets how fast
# senders hear their 250, and nothing reads the rows back as objects here.
_INTAKES = Intake.__table__  # type: ignore[attr-defined]
_KNOWN = select(_INTAKES.c.sha256, _INTAKES.c.id).where(
    _INTAKES.c.sha256.in_(bindparam("digests", expanding=True))
)
# Each new row's digest comes back with its id: asked to keep the rows' order instead,
# SQLAlchemy inserts them one statement each on SQLite.
_INSERT_INTAKES = insert(_INTAKES).returning(_INTAKES.c.sha256, _INTAKES.c.id)
_RAWS = IntakeRaw.__table__  # type: ignore[attr-defined]
_INSERT_RAWS = insert(_RAWS)
_DIGEST_CHUNK = 1 << 20
_SIZES = select(_RAWS.c.intake_id, func.length(_RAWS.c.raw)).where(
    _RAWS.c.intake_id.in_(bindparam("ids", expanding=True))
)


def content_digest(raw: bytes) -> str:
    """sha256 of the body: everything after the header block, with CRLF taken as LF and
    trailing white space dropped. Hashed in slices, so a large message is not copied."""
    digest = hashlib.sha256()
    separator = _HEADER_END.search(raw)
    if separator is None:
        return digest.hexdigest()
    view = memoryview(raw)[separator.end() :]
    end = len(view)
    while end and view[end - 1] in b" \t\r\n\x0b\x0c":
        end -= 1
    carry = b""
    for start in range(0, end, _DIGEST_CHUNK):
        chunk = carry + bytes(view[start : min(start + _DIGEST_CHUNK, end)])
        # A CR at the end of a slice may be the first half of a CRLF: keep it for the next.
        chunk, carry = (chunk[:-1], b"\r") if chunk.endswith(b"\r") else (chunk, b"")
        digest.update(chunk.replace(b"\r\n", b"\n"))
    digest.update(carry)
    return digest.hexdigest()


def accept(
    store: Store,
    raw: bytes,
    source: str,
    now: datetime,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
) -> Accepted:
    """Store the raw message durably. Raises StoreUnavailable when the database cannot take it
    now: the caller answers 451 (SMTP), leaves it in the mailbox (IMAP) or exits 75 (pipe)."""
    return accept_many(store, [Incoming(raw, source, now, envelope_from, envelope_to)])[0]


def accept_many(
    store: Store, messages: Sequence[Incoming], then: Callable[[Session], None] | None = None
) -> list[Accepted]:
    """Store several messages in one transaction: one commit for all, in their order. The
    same bytes twice (stored before, or twice in this batch) are stored once. `then` writes
    what must be committed with them (how far the IMAP poller has read)."""
    computed = [m.digests or Digests.of(m.raw) for m in messages]
    digests = [d.sha256 for d in computed]
    with store.session(durable=True) as session:
        known: dict[str, int] = dict(direct(session, _KNOWN, {"digests": list(set(digests))}).all())
        new: dict[str, dict[str, object]] = {}
        raws: dict[str, bytes] = {}
        for message, both in zip(messages, computed, strict=True):
            digest = both.sha256
            if digest in known or digest in new:
                continue
            new[digest] = {
                "received_at": message.received_at,
                "source": message.source,
                "envelope_from": message.envelope_from,
                "envelope_to": "\n".join(message.envelope_to),
                "sha256": digest,
                "size": message.whole_size or len(message.raw),
                "content_sha256": both.content_sha256,
            }
            raws[digest] = message.raw
        ids: dict[str, int] = {}
        if new:
            ids = dict(direct(session, _INSERT_INTAKES, list(new.values())).all())
            _store_raws(session, {ids[digest]: raw for digest, raw in raws.items()})
        results, seen = [], set(known)
        for digest in digests:
            first = digest in ids and digest not in seen
            seen.add(digest)
            results.append(Accepted(known.get(digest) or ids[digest], not first))
        if then is not None:
            then(session)
        return results


def _store_raws(session: Session, raws: dict[int, bytes]) -> None:
    sqlite = _is_sqlite(session)  # PostgreSQL takes every size by a plain statement
    streamed = {i: raw for i, raw in raws.items() if sqlite and len(raw) >= _STREAMED}
    plain = [{"intake_id": i, "raw": raw} for i, raw in raws.items() if i not in streamed]
    if plain:
        direct(session, _INSERT_RAWS, plain)
    for intake_id, raw in streamed.items():
        _write_large(session, intake_id, raw)


def _write_large(session: Session, intake_id: int, raw: bytes) -> None:
    """A large message's bytes into its row on SQLite. SQLite copies a bound value twice on
    its way into a table (the value, then the record it builds): twice the message again,
    in the process that answers senders. So its row is made with zeroes, which SQLite
    writes without holding them, and the bytes are written into it a piece at a time."""
    direct(session, _INSERT_ZEROES, {"intake_id": intake_id, "size": len(raw)})
    view = memoryview(raw)
    with _sqlite(session).blobopen("intake_raw", "raw", intake_id) as blob:
        for start in range(0, len(raw), _STREAM_PIECE):
            blob.write(view[start : start + _STREAM_PIECE])


def stored_sizes(session: Session, intake_ids: Collection[int]) -> dict[int, int]:
    """How many bytes of stored messages were kept, by id, without reading them."""
    if not intake_ids:
        return {}
    return dict(direct(session, _SIZES, {"ids": list(intake_ids)}).all())


def stored_raws(session: Session, intake_ids: Collection[int]) -> dict[int, bytes]:
    """The bytes of stored messages, as they came, by id."""
    if not intake_ids:
        return {}
    wanted = col(IntakeRaw.intake_id).in_(intake_ids)
    return dict(session.exec(select(IntakeRaw.intake_id, IntakeRaw.raw).where(wanted)).all())


def stored_raw(session: Session, intake_id: int) -> bytes:
    """The bytes of one stored message, as they came. On SQLite read from the row straight
    into the result: a query would hold them twice (SQLite's copy, then Python's)."""
    if _is_sqlite(session):
        with _sqlite(session).blobopen("intake_raw", "raw", intake_id, readonly=True) as blob:
            return blob.read()
    return stored_raws(session, [intake_id])[intake_id]


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _sqlite(session: Session) -> sqlite3.Connection:
    """The session's own SQLite connection, in its transaction."""
    connection: sqlite3.Connection = session.connection().connection.driver_connection
    return connection


class GroupCommit:
    """Messages that arrive while a commit is running are stored together by the next one.

    A lone message is committed at once; under load, each commit (and its fsync) answers
    every message that queued up meanwhile, so the disk's rate of commits does not cap the
    rate of messages. Each caller hears back only once its message is committed."""

    def __init__(self, store: Store, max_batch: int = 64) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: list[tuple[Incoming, asyncio.Future[Accepted]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._waiting = 0  # messages handed in and not answered yet
        # How many messages a new one finds waiting, averaged over the latest ones: well
        # under one when mail trickles in, several when senders crowd in (a burst).
        self.crowding = 0.0
        self.last_crowded = 0.0  # when that average last said "crowded"

    async def accept(self, message: Incoming) -> Accepted:
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self.crowding += (self._waiting - self.crowding) / CROWDING_SPAN
        if self.crowding >= 1.0:
            self.last_crowded = time.monotonic()
        self._queue.append((message, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._commit_batches(), name="mailgate-group-commit")
        self._waiting += 1
        try:
            return await future
        finally:
            self._waiting -= 1

    async def _commit_batches(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            messages = [message for message, _ in batch]
            try:
                results = await asyncio.to_thread(accept_many, self.store, messages)
            except Exception as exc:  # every message of the batch gets the same answer
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
