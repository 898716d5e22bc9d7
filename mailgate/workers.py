"""Where the daemon processes stored mail: in worker processes, or in its own process.

Intake (SMTP, IMAP, the group commit) and processing (parse, route, tickets, rendering) are
both Python code; in one process they take turns at one core. In worker processes each gets
a core, so answering senders does not wait for tickets to be written, and the other way round.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from mailgate import pipeline
from mailgate.app import build_context, build_renderer
from mailgate.config import Config
from mailgate.context import Context
from mailgate.logs import configure_logging
from mailgate.pipeline import Outcome

log = logging.getLogger("mailgate.workers")


class WorkerDied(Exception):
    """A worker process ended while it processed a batch (killed, out of memory, a crash)."""


class Processor(Protocol):
    async def process(self, ctx: Context, intake_ids: Sequence[int]) -> list[Outcome]: ...

    def warm_up(self) -> None: ...

    def reloaded(self) -> None: ...

    def close(self) -> None: ...


class InlineProcessor:
    """Processing in a thread of the daemon's own process (`[processing] workers = 0`)."""

    async def process(self, ctx: Context, intake_ids: Sequence[int]) -> list[Outcome]:
        return await asyncio.to_thread(pipeline.process_batch, ctx, intake_ids)

    def warm_up(self) -> None:
        """Nothing to start."""

    def reloaded(self) -> None:
        """Nothing to do: the next batch gets the daemon's new context."""

    def close(self) -> None:
        """Nothing to release."""


class WorkerProcessor:
    """Processing in worker processes, each with its own database connections and renderer.

    Every batch carries the configuration and a generation number that a reload raises: a
    worker builds its context again (templates read anew) when the number changed."""

    def __init__(self, config: Config, workers: int) -> None:
        self.workers = workers
        self.generation = 0
        self._pool = self._new_pool(config)

    def _new_pool(self, config: Config) -> ProcessPoolExecutor:
        # Not fork: the daemon has threads (SQLite, IMAP) whose locks a fork would copy
        # mid-use. The fork server is started once, clean, and forks each worker quickly.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["mailgate.workers"])
        return ProcessPoolExecutor(
            self.workers, context, initializer=_start_worker, initargs=(config, os.getpid())
        )

    async def process(self, ctx: Context, intake_ids: Sequence[int]) -> list[Outcome]:
        job = (ctx.config, self.generation, list(intake_ids))
        try:
            future = self._pool.submit(_process_in_worker, *job)
        except BrokenProcessPool:
            # A worker ended while idle (killed from outside): nothing of this batch was
            # in hand, so a fresh pool simply takes it.
            self._replace_pool(ctx.config)
            future = self._pool.submit(_process_in_worker, *job)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            # The lost process's transaction was rolled back: the messages are still stored
            # and waiting, for a fresh pool to take up again.
            self._replace_pool(ctx.config)
            raise WorkerDied(str(exc) or "a worker process ended abruptly") from exc

    def _replace_pool(self, config: Config) -> None:
        log.warning("event=worker_pool_restarted workers=%d", self.workers)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool(config)

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

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def build_processor(ctx: Context) -> Processor:
    workers = ctx.config.processing.workers
    if workers == 0:
        return InlineProcessor()
    return WorkerProcessor(ctx.config, workers)


# In the worker process ---------------------------------------------------------------------

ORPHAN_CHECK_SECONDS = 1.0
_worker: tuple[int, Context] | None = None  # the generation it was built for, and the context


def _start_worker(config: Config, daemon_pid: int) -> None:
    serve(daemon_pid)
    configure_logging(config.logging)
    global _worker
    # The daemon checked (and on SQLite migrated) the schema before it started workers.
    _worker = (0, build_context(config, migrate=False))


def serve(parent_pid: int) -> None:
    """Make this pool process one that its parent alone ends: the parent decides when its
    workers stop (the daemon after draining), so Ctrl-C in a terminal or systemd's SIGTERM
    to the whole group must not end one in the middle of a batch; and it ends by itself
    once the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(
        target=_end_with, args=(parent_pid,), name="mailgate-orphan-check", daemon=True
    ).start()


def _end_with(parent_pid: int) -> None:
    """End this worker once its parent is gone (killed, crashed). Its pool would never say
    so: a worker holds a copy of its own job queue's writing end, and the fork server lives
    as long as any worker does. An unfinished transaction is rolled back by the database;
    its messages wait, stored, for the next start."""
    while True:
        time.sleep(ORPHAN_CHECK_SECONDS)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            log.warning("event=worker_orphaned parent_pid=%d", parent_pid)
            os._exit(1)
        except PermissionError:  # alive, and another user's (a reused pid): not ours
            os._exit(1)


def _ready() -> bool:
    return _worker is not None


def _process_in_worker(config: Config, generation: int, intake_ids: list[int]) -> list[Outcome]:
    global _worker
    assert _worker is not None, "worker used before its initializer ran"
    built_for, ctx = _worker
    if built_for != generation:
        ctx = _reloaded(ctx, config)
        _worker = (generation, ctx)
    return pipeline.process_batch(ctx, intake_ids)


def _reloaded(ctx: Context, config: Config) -> Context:
    """The context after a reload: the same database, new configuration and templates."""
    return dataclasses.replace(ctx, config=config, renderer=build_renderer(config))
