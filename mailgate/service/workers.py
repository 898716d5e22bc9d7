"""Where the daemon processes stored mail: in worker processes, or in its own process.

Intake (SMTP, IMAP, the group commit) and processing (parse, route, tickets, rendering) are
both Python code; in one process they take turns at one core. In worker processes each gets
a core, so answering senders does not wait for tickets to be written, and the other way round.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from mailgate.config import Config
from mailgate.flows import pipeline
from mailgate.flows.pipeline import Outcome
from mailgate.outbound.context import Context
from mailgate.outbound.render import Renderer, TemplateError
from mailgate.reading.parse import ParsedMail
from mailgate.service.ahead import StoredAhead, worth_it
from mailgate.service.arenas import limit_malloc_arenas
from mailgate.service.children import owned_by
from mailgate.service.deaths import Run, count_deaths
from mailgate.service.logs import configure_logging
from mailgate.service.parts import build_context, build_renderer
from mailgate.store.database import Store, StoreUnavailable

log = logging.getLogger("mailgate.workers")


class WorkQueue(asyncio.Queue[int | None]):
    """Stored messages for the processing tasks, first come first; None: no more work."""

    def waiting(self, limit: int) -> list[int]:
        """The ids queued next, up to limit, left in the queue (to parse them ahead)."""
        # `_queue` is the deque that asyncio.Queue keeps for its subclasses to use.
        return [i for i in itertools.islice(self._queue, limit) if i is not None]


class WorkerDied(Exception):
    """A worker process ended while it processed a batch (killed, out of memory, a crash,
    or ended by us past the time limit); `why` says which, for the quarantine reason."""

    def __init__(self, message: str, why: str = "ended the worker process") -> None:
        super().__init__(message)
        self.why = why


# A worker still busy at shutdown gets this long after the drain before it is killed.
CLOSE_SECONDS = 3.0


class Processor(Protocol):
    async def process(
        self, ctx: Context, intake_ids: Sequence[int], queued: Sequence[int] = ()
    ) -> list[Outcome]:
        """Bring the batch to its outcomes; `queued`: what is likely to come next."""
        ...

    def warm_up(self) -> None: ...

    def deaths(self) -> dict[int, int]:
        """Waiting messages that processes of ours died with before this start, and how
        often; counted once, at the start."""
        ...

    def reloaded(self) -> None: ...

    def close(self) -> None: ...


class InlineProcessor:
    """Processing in a thread of the daemon's own process (`[processing] workers = 0`).

    A message that kills a worker leaves the daemon alive to count it; one that kills this
    process takes the count with it. So each batch is marked in the database before it is
    processed, and the next start counts a mark it finds as a death (deaths.py)."""

    def __init__(self, store: Store) -> None:
        self.run = Run(store)
        self.busy = threading.Event()  # a batch in hand, whether or not anyone still waits

    async def process(
        self, ctx: Context, intake_ids: Sequence[int], queued: Sequence[int] = ()
    ) -> list[Outcome]:
        return await asyncio.to_thread(self._marked_and_processed, ctx, intake_ids)

    def _marked_and_processed(self, ctx: Context, intake_ids: Sequence[int]) -> list[Outcome]:
        self.run.mark(intake_ids)
        self.busy.set()
        try:
            return pipeline.process_batch(ctx, intake_ids)
        finally:
            self.busy.clear()

    def deaths(self) -> dict[int, int]:
        return count_deaths(self.run.store, self.run.name)

    def warm_up(self) -> None:
        """Nothing to start."""

    def reloaded(self) -> None:
        """Nothing to do: the next batch gets the daemon's new context."""

    def close(self) -> None:
        if self.busy.is_set():
            # A batch outlasted the drain: the process is killed with it in hand, and that
            # is a death as much as a crash (else a mail that never finishes would hold
            # the daemon again after every restart).
            log.error("event=stopped_with_mail_in_hand")
            return
        try:
            self.run.end()
        except StoreUnavailable as exc:  # each mark left counts one death too many: not two
            log.warning("event=in_hand_marks_kept error=%r", str(exc))


class WorkerProcessor:
    """Processing in worker processes, each with its own database connections and renderer.

    Every batch carries the configuration and a generation number that a reload raises: a
    worker builds its context again (templates read anew) when the number changed.

    One worker writes one batch after another; on a machine with a core to spare, a second
    process parses the queued messages meanwhile (ahead.py), and the worker gets them parsed
    with their batch. Several workers parse side by side already and need none."""

    def __init__(self, config: Config, workers: int) -> None:
        self.workers = workers
        self.time_limit = config.processing.time_limit_seconds
        self.generation = 0
        self._pool = self._new_pool(config)
        self.ahead = StoredAhead.start(config) if workers == 1 and worth_it() else None

    def _new_pool(self, config: Config) -> ProcessPoolExecutor:
        # Not fork: the daemon has threads (SQLite, IMAP) whose locks a fork would copy
        # mid-use. The fork server is started once, clean, and forks each worker quickly.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["mailgate.service.workers"])
        return ProcessPoolExecutor(
            self.workers, context, initializer=_start_worker, initargs=(config, os.getpid())
        )

    async def process(
        self, ctx: Context, intake_ids: Sequence[int], queued: Sequence[int] = ()
    ) -> list[Outcome]:
        parsed: dict[int, ParsedMail] = {}
        if self.ahead is not None:
            parsed = await asyncio.to_thread(self.ahead.taken, intake_ids)
            self.ahead.look_ahead([i for i in queued if i not in intake_ids])
            log.debug("event=batch messages=%d parsed_ahead=%d", len(intake_ids), len(parsed))
        job = (ctx.config, self.generation, list(intake_ids), parsed)
        try:
            future = self._pool.submit(self._job(), *job)
        except BrokenProcessPool:
            # A worker ended while idle (killed from outside): nothing of this batch was
            # in hand, so a fresh pool simply takes it.
            self._replace_pool(ctx.config)
            future = self._pool.submit(self._job(), *job)
        waiting = asyncio.wrap_future(future)
        # Retrieved here, so that a batch given up on leaves no "never retrieved" error.
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            # shield: a wait given up must not cancel the future, which is the pool's to end.
            return await asyncio.wait_for(asyncio.shield(waiting), self.time_limit)
        except TimeoutError as exc:
            # Pure Python cannot be interrupted inside the worker: the parent ends it. Its
            # transaction is rolled back; the messages are taken up again, each alone.
            self._end_workers()
            self._replace_pool(ctx.config)
            # The time limit is for processing, not for starting a worker.
            await asyncio.to_thread(self.warm_up)
            why = f"took longer than {self.time_limit:g} s"
            raise WorkerDied(f"the batch {why}", why) from exc
        except BrokenProcessPool as exc:
            # The lost process's transaction was rolled back: the messages are still stored
            # and waiting, for a fresh pool to take up again.
            self._replace_pool(ctx.config)
            await asyncio.to_thread(self.warm_up)
            raise WorkerDied(str(exc) or "a worker process ended abruptly") from exc

    def _job(self) -> Callable[..., list[Outcome]]:
        """What a worker runs for a batch (tests put one there that a poison mail ends)."""
        return _process_in_worker

    def _replace_pool(self, config: Config) -> None:
        log.warning("event=worker_pool_restarted workers=%d", self.workers)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool(config)

    def deaths(self) -> dict[int, int]:
        """None: a worker's death is counted by the daemon as it happens."""
        return {}

    def warm_up(self) -> None:
        """Start the workers now rather than at the first mail (they take a second to
        start, which would otherwise stall the event loop that submits the first batch)."""
        try:
            for future in [self._pool.submit(_ready) for _ in range(self.workers)]:
                future.result()
        except BrokenProcessPool as exc:  # the first batch will say so again, and retry
            log.error("event=worker_start_failed error=%r", str(exc))

    def reloaded(self) -> None:
        self.generation += 1

    def _processes(self) -> list[multiprocessing.process.BaseProcess]:
        # ProcessPoolExecutor keeps its processes by pid; it offers no public way to end a
        # busy one, and waiting for it is what a time limit must not do.
        processes = getattr(self._pool, "_processes", None) or {}
        return list(processes.values())

    def _end_workers(self) -> None:
        for process in self._processes():
            log.error("event=worker_ended pid=%s time_limit=%g", process.pid, self.time_limit)
            process.kill()

    def close(self) -> None:
        """Stop the workers: a worker still busy CLOSE_SECONDS after the drain is killed
        (its transaction rolled back, its messages wait for the next start), so that no
        message can keep the daemon from stopping."""
        if self.ahead is not None:
            self.ahead.close()
        processes = self._processes()
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + CLOSE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        if any(process.is_alive() for process in processes):
            self._end_workers()
        self._pool.shutdown(wait=True)


def build_processor(ctx: Context) -> Processor:
    workers = ctx.config.processing.workers
    if workers == 0:
        return InlineProcessor(ctx.store)
    return WorkerProcessor(ctx.config, workers)


# In the worker process ---------------------------------------------------------------------

_worker: tuple[int, Context] | None = None  # the generation it was built for, and the context


def _start_worker(config: Config, daemon_pid: int) -> None:
    owned_by(daemon_pid, "mailgate-worker")
    configure_logging(config.logging)
    limit_malloc_arenas()
    global _worker
    # The daemon checked (and on SQLite migrated) the schema before it started workers.
    ctx = build_context(config, migrate=False)
    _preloaded(ctx.renderer)
    _worker = (0, ctx)


def _ready() -> bool:
    return _worker is not None


def _process_in_worker(
    config: Config, generation: int, intake_ids: list[int], parsed: dict[int, ParsedMail]
) -> list[Outcome]:
    global _worker
    assert _worker is not None, "worker used before its initializer ran"
    built_for, ctx = _worker
    if built_for != generation:
        ctx = _reloaded(ctx, config)
        _worker = (generation, ctx)
    return pipeline.process_batch(ctx, intake_ids, parsed)


def _reloaded(ctx: Context, config: Config) -> Context:
    """The context after a reload: the same database, new configuration and templates."""
    renderer = build_renderer(config)
    _preloaded(renderer)
    return dataclasses.replace(ctx, config=config, renderer=renderer)


def _preloaded(renderer: Renderer) -> None:
    """Every template compiled while the files are as the daemon checked them, so that one
    broken on disk after a refused reload reaches no mail of this worker. A file broken
    since (a worker restarted meanwhile) is logged; the mail that needs it is quarantined."""
    try:
        renderer.preload()
    except TemplateError as exc:
        log.error("event=template_broken error=%r", str(exc))
