"""Messages from files and standard input (`mailgate ingest`): stored and processed a batch
at a time, while a second process parses the next batch.

Parsing is a third of the work on a message and needs nothing from the database; writing
tickets needs the database and must go in order (a reply finds the ticket an earlier mail
opened). So one process writes, batch after batch, and another parses ahead of it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

from mailgate import pipeline
from mailgate.context import Context
from mailgate.intake.spool import Accepted, Digests, Incoming, accept_many
from mailgate.parse import ParsedMail
from mailgate.pipeline import PARSE_AHEAD_BYTES, Outcome
from mailgate.workers import serve

log = logging.getLogger("mailgate.ingest")

# Files stored by one commit and processed by one transaction (pipeline.process_batch).
BATCH = 50
# Batches handed to the second process before this one reaches them: with one, a batch the
# second process was slow with was parsed here whole, a third of all messages in a run.
AHEAD = 2
# Messages the second process parses per task: what it has not begun of a batch when this
# process reaches it, this one parses; what it is working on, this one waits for.
PART = 10
WAIT = 2.0  # seconds, at most, for a part the second process is working on


@dataclass(frozen=True)
class Ingested:
    """What became of one file: stored (or found stored before), and its outcome."""

    name: str
    accepted: Accepted | None = None  # None: it could not be read
    outcome: Outcome | None = None  # None: not processed now (a duplicate, or unreadable)


Batch = Mapping[str, bytes | None]  # file name -> its bytes, None when it could not be read


def ingest(
    ctx: Context, batches: Iterable[Batch], parse_ahead: bool = True
) -> Iterator[list[Ingested]]:
    """Store and process each batch in turn; yields each batch's results in file order.
    `parse_ahead`: parse the next batches in a second process (when there are two cores)."""
    batches = iter(batches)
    first, second = next(batches, None), next(batches, None)
    # One batch (a mail piped in by the MTA, say) is not worth starting a process for.
    worth_it = second is not None and (os.cpu_count() or 1) > 1
    batches = chain([b for b in (first, second) if b is not None], batches)
    with _parser(parse_ahead and worth_it) as submit:
        queued: deque[tuple[Batch, Parsing]] = deque()
        for batch in batches:
            queued.append((batch, submit(batch)))
            if len(queued) > AHEAD:
                yield _store_and_process(ctx, *_collected(queued.popleft()))
        while queued:
            yield _store_and_process(ctx, *_collected(queued.popleft()))


def _collected(queued: tuple[Batch, Parsing]) -> tuple[Batch, dict[str, Ahead]]:
    """The batch, with what the second process has made of it by now. A part it is working
    on is waited for (milliseconds, unless it is in trouble: then at most WAIT seconds); a
    part it has not begun is taken back and parsed at its turn here. So neither process
    idles while the other has work, and the second process only ever saves time."""
    batch, parsing = queued
    ahead: dict[str, Ahead] = {}
    for part in parsing:
        if part.cancel():  # not begun: parsed at its turn instead
            continue
        try:
            ahead.update(part.result(timeout=WAIT))
        except Exception:  # gone (submit() says so) or stuck: parsed at its turn
            continue
    return batch, ahead


def _store_and_process(ctx: Context, batch: Batch, ahead: Mapping[str, Ahead]) -> list[Ingested]:
    readable = {name: raw for name, raw in batch.items() if raw is not None}
    now = ctx.clock()
    incoming = [
        Incoming(raw, "pipe" if name == "-" else "file", now, digests=_digests(ahead, name))
        for name, raw in readable.items()
    ]
    accepted = dict(zip(readable, accept_many(ctx.store, incoming), strict=True))
    fresh = {a.intake_id: name for name, a in accepted.items() if not a.duplicate}
    given = {i: ahead[name].mail for i, name in fresh.items() if name in ahead}
    outcomes = {o.intake_id: o for o in pipeline.process_batch(ctx, list(fresh), given)}
    return [
        Ingested(name, accepted.get(name), _own(outcomes, accepted.get(name))) for name in batch
    ]


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
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mailgate.intake.files"])
    with ProcessPoolExecutor(1, context, initializer=serve, initargs=(os.getpid(),)) as pool:
        # Starting the process takes about a second, during which submit() blocks: it is
        # started from a thread, and the batches meanwhile are parsed at their turn.
        gone = threading.Event()
        starting = threading.Thread(target=_start, args=(pool, gone), name="mailgate-parser")
        starting.start()

        def submit(batch: Batch) -> Parsing:
            if starting.is_alive() or gone.is_set():
                return []
            try:
                return [pool.submit(_parse_all, part) for part in _parts(batch)]
            except Exception as exc:  # gone (killed, out of memory): parsed here from now on
                _stopped(gone, exc)
                return []

        yield submit


def _start(pool: ProcessPoolExecutor, gone: threading.Event) -> None:
    try:
        pool.submit(int)
    except Exception as exc:  # no second process: each batch is parsed at its turn
        _stopped(gone, exc)


def _stopped(gone: threading.Event, exc: Exception) -> None:
    gone.set()
    log.warning("event=parse_ahead_stopped reason=%r", str(exc) or type(exc).__name__)


def _parts(batch: Batch) -> list[dict[str, bytes]]:
    """The messages worth parsing ahead, PART at a time: a large one is parsed at its turn,
    so that its parts are held once, in the process that stores them."""
    small = [
        (name, raw)
        for name, raw in batch.items()
        if raw is not None and len(raw) <= PARSE_AHEAD_BYTES
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


def in_batches(names: Sequence[str], read: Callable[[str], bytes | None]) -> Iterator[Batch]:
    """The files' contents, read a batch at a time (all at once could exhaust memory)."""
    for start in range(0, len(names), BATCH):
        yield {name: read(name) for name in names[start : start + BATCH]}
