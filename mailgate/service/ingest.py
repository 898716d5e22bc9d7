"""Messages from files and standard input (`mailgate ingest`): stored and processed a batch
at a time, in the order given, while a second process parses the next batches (ahead.py).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

from mailgate.flows import pipeline
from mailgate.flows.pipeline import PARSE_AHEAD_BYTES, Outcome
from mailgate.intake.reading import Withheld
from mailgate.outbound.context import Context
from mailgate.reading.parse import ParsedMail
from mailgate.service.ahead import PARSER_NAME, PART, SecondProcess, finished, worth_it
from mailgate.service.children import owned_by
from mailgate.store.models import Intake
from mailgate.store.spool import Accepted, Digests, Incoming, accept_many

# Files stored by one commit and processed by one transaction (pipeline.process_batch).
BATCH = 50
# Batches handed to the second process before this one reaches them: with one, a batch the
# second process was slow with was parsed here whole, a third of all messages in a run.
AHEAD = 2


@dataclass(frozen=True)
class Ingested:
    """What became of one file: stored (or found stored before), and its outcome."""

    name: str
    accepted: Accepted | None = None  # None: it could not be read
    outcome: Outcome | None = None  # None: not processed now (a duplicate, or unreadable)


def described(ctx: Context, result: Ingested) -> str:
    """What became of a stored file, in the words `mailgate ingest` prints after its name."""
    if result.outcome is not None:
        return result.outcome.describe()
    assert result.accepted is not None, "only stored messages are described"
    with ctx.store.session() as session:
        row = session.get(Intake, result.accepted.intake_id)
        state = (
            f"{row.status}: {row.reason}" if row and row.reason else (row.status if row else "?")
        )
    return f"duplicate of stored message {result.accepted.intake_id} ({state})"


# File name -> its bytes; its header alone when it is over the size limit (intake/reading.py);
# None when it could not be read.
Batch = Mapping[str, bytes | Withheld | None]


@dataclass(frozen=True)
class Envelope:
    """The envelope an MTA hands over with the mail (Postfix pipe's ${sender} and
    ${original_recipient}); a recipient picks its category as on SMTP."""

    sender: str = ""
    recipients: Sequence[str] = ()

    @classmethod
    def from_pipe(cls, sender: str, recipients: Iterable[str]) -> Envelope:
        """The envelope from the addresses as an MTA's pipe passes them, in <> or bare."""
        sender = sender.strip("<>")
        # Postfix writes MAILER-DAEMON for the null sender unless null_sender= is set: no address.
        return cls(
            sender if "@" in sender else "", [r.strip("<>") for r in recipients if r.strip("<>")]
        )


def ingest(
    ctx: Context,
    batches: Iterable[Batch],
    parse_ahead: bool = True,
    envelope: Envelope = Envelope(),
) -> Iterator[list[Ingested]]:
    """Store and process each batch in turn; yields each batch's results in file order.
    `parse_ahead`: parse the next batches in a second process (when there are two cores).
    `envelope`: the one every message came with."""
    batches = iter(batches)
    first, second = next(batches, None), next(batches, None)
    # One batch (a mail piped in by the MTA, say) is not worth starting a process for.
    several = second is not None
    batches = chain([b for b in (first, second) if b is not None], batches)
    with _parser(parse_ahead and several and worth_it()) as submit:
        queued: deque[tuple[Batch, Parsing]] = deque()
        for batch in batches:
            queued.append((batch, submit(batch)))
            if len(queued) > AHEAD:
                yield _store_and_process(ctx, *_collected(queued.popleft()), envelope)
        while queued:
            yield _store_and_process(ctx, *_collected(queued.popleft()), envelope)


def _collected(queued: tuple[Batch, Parsing]) -> tuple[Batch, dict[str, Ahead]]:
    """The batch, with what the second process has made of it by now."""
    batch, parsing = queued
    return batch, finished(parsing)


def _store_and_process(
    ctx: Context, batch: Batch, ahead: Mapping[str, Ahead], envelope: Envelope = Envelope()
) -> list[Ingested]:
    readable = {name: raw for name, raw in batch.items() if raw is not None}
    now = ctx.clock()
    incoming = [_incoming(name, raw, now, ahead, envelope) for name, raw in readable.items()]
    accepted = dict(zip(readable, accept_many(ctx.store, incoming), strict=True))
    fresh = {a.intake_id: name for name, a in accepted.items() if not a.duplicate}
    given = {i: ahead[name].mail for i, name in fresh.items() if name in ahead}
    outcomes = {o.intake_id: o for o in pipeline.process_batch(ctx, list(fresh), given)}
    return [
        Ingested(name, accepted.get(name), _own(outcomes, accepted.get(name))) for name in batch
    ]


def _incoming(
    name: str,
    raw: bytes | Withheld,
    now: datetime,
    ahead: Mapping[str, Ahead],
    envelope: Envelope,
) -> Incoming:
    source = "pipe" if name == "-" else "file"
    sender, recipients = envelope.sender, envelope.recipients
    if isinstance(raw, Withheld):
        return Incoming(raw.head, source, now, sender, recipients, whole_size=raw.size)
    return Incoming(raw, source, now, sender, recipients, digests=_digests(ahead, name))


def _own(outcomes: Mapping[int, Outcome], accepted: Accepted | None) -> Outcome | None:
    if accepted is None or accepted.duplicate:
        return None
    return outcomes.get(accepted.intake_id)


@contextmanager
def _parser(in_second_process: bool) -> Iterator[Callable[[Batch], Parsing]]:
    """A function that starts parsing a batch and returns a future for each part; one that
    returns none (each message is parsed at its turn) without a second process."""
    if not in_second_process:
        yield lambda batch: []
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(["mailgate.service.ingest"])
    second = SecondProcess(owned_by, os.getpid(), PARSER_NAME)

    def submit(batch: Batch) -> Parsing:
        parts = [second.submit(_parse_all, part) for part in _parts(batch)]
        return [part for part in parts if part is not None]

    try:
        yield submit
    finally:
        second.close()


def _parts(batch: Batch) -> list[dict[str, bytes]]:
    """The messages worth parsing ahead, PART at a time: a large one is parsed at its turn,
    so that its parts are held once, in the process that stores them."""
    small = [
        (name, raw)
        for name, raw in batch.items()
        if isinstance(raw, bytes) and len(raw) <= PARSE_AHEAD_BYTES
    ]
    return [dict(small[start : start + PART]) for start in range(0, len(small), PART)]


@dataclass(frozen=True)
class Ahead:
    """What the second process made of one message."""

    mail: ParsedMail  # parsed, with what processing computes from the mail alone
    digests: Digests


# A batch handed to the second process: a future for each part of it.
Parsing = list[Future[dict[str, Ahead]]]


def _digests(ahead: Mapping[str, Ahead], name: str) -> Digests | None:
    return ahead[name].digests if name in ahead else None


def _parse_all(raws: Mapping[str, bytes]) -> dict[str, Ahead]:
    """In the second process. A message that fails to parse is left out: parsed again at its
    turn, it fails there, where the failure is handled (quarantine with the reason)."""
    done = {}
    for name, raw in raws.items():
        try:
            done[name] = Ahead(pipeline.prepared(raw), Digests.of(raw))
        except Exception:
            continue
    return done


def in_batches(
    names: Sequence[str], read: Callable[[str], bytes | Withheld | None]
) -> Iterator[Batch]:
    """The files' contents, read a batch at a time (all at once could exhaust memory)."""
    for start in range(0, len(names), BATCH):
        yield {name: read(name) for name in names[start : start + BATCH]}
