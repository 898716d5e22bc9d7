"""Parsing ahead of the process that writes tickets.

Parsing is a third of the work on a message and needs nothing from the database; writing
tickets needs the database and goes in order (a reply finds the ticket an earlier mail
opened). So one process writes, and a second one parses the messages it will take next:
`mailgate ingest` hands it the files' bytes (service/ingest.py); for the daemon's worker it
reads the queued messages from the database by id (StoredAhead, below).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from sqlmodel import col, select

from mailgate.config import Config
from mailgate.flows import pipeline
from mailgate.reading.parse import ParsedMail
from mailgate.service.children import owned_by
from mailgate.service.logs import configure_logging
from mailgate.store.database import Store
from mailgate.store.models import RECEIVED, Intake
from mailgate.store.spool import stored_raws

log = logging.getLogger("mailgate.ahead")

# Messages the second process parses per task. When the writer reaches them, it parses a
# task's messages itself if the task has not begun, and waits for a task being worked on.
PART = 10
WAIT = 2.0  # seconds, at most, for a task the second process is working on
# The daemon replaces a second process that died, this long after the last start at the
# soonest: one that dies at every start must not cost a process start per batch.
RESTART_SECONDS = 60.0
PARSER_NAME = "mailgate-parser"  # what ps and top show

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class SecondProcess:
    """The process that parses ahead, started by the fork server (whose modules to preload
    the caller chose). It takes a moment to start; until then, and for good once it failed
    (killed, out of memory), submit() returns None and the writer parses at its turn."""

    def __init__(self, initializer: Callable[..., object], *initargs: Any) -> None:
        context = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(1, context, initializer=initializer, initargs=initargs)
        self._gone = threading.Event()
        # Started from a thread: submit() blocks while the process starts.
        self._starting = threading.Thread(target=self._start, name="mailgate-parser")
        self._starting.start()

    def _start(self) -> None:
        try:
            self._pool.submit(int).result()
        except Exception as exc:  # no second process: each message is parsed at its turn
            self._stopped(exc)

    def _stopped(self, exc: BaseException) -> None:
        if not self._gone.is_set():
            self._gone.set()
            log.warning("event=parse_ahead_stopped reason=%r", str(exc) or type(exc).__name__)

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        if self._starting.is_alive() or self._gone.is_set():
            return None
        try:
            return self._pool.submit(fn, *args)
        except Exception as exc:  # gone: parsed by the writer from now on
            self._stopped(exc)
            return None

    def close(self) -> None:
        self._starting.join()
        self._pool.shutdown(wait=True, cancel_futures=True)


def worth_it() -> bool:
    """A second process only helps when it has a core to itself beside the writer."""
    return (os.cpu_count() or 1) > 1


def finished(tasks: Iterable[Future[dict[K, V]]]) -> dict[K, V]:
    """What the second process has made of these tasks by now. A task not begun is taken
    back (the writer parses its messages at their turn); one being worked on is waited for
    (milliseconds, unless the process is in trouble: then at most WAIT seconds). So neither
    process idles while the other has work, and the second process only ever saves time."""
    done: dict[K, V] = {}
    for task in tasks:
        if task.cancel():
            continue
        try:
            done.update(task.result(timeout=WAIT))
        except Exception:  # gone or stuck: parsed by the writer
            continue
    return done


class StoredAhead:
    """The daemon's side: the messages queued after the batch in hand are read and parsed by
    the second process; the worker gets them parsed with the batch they come in. For one
    processing task: look_ahead() and taken() are called one after the other."""

    def __init__(self, start: Callable[[], SecondProcess]) -> None:
        self._start = start
        self._second = start()
        self._started_at = time.monotonic()
        self._tasks: dict[int, Future[dict[int, ParsedMail]]] = {}  # queued id -> its task
        self._ready: dict[int, ParsedMail] = {}  # parsed in a task taken with an earlier batch

    @classmethod
    def start(cls, config: Config) -> StoredAhead:
        return cls(functools.partial(SecondProcess, _start_reader, config, os.getpid()))

    def look_ahead(self, queued: Sequence[int]) -> list[Future[dict[int, ParsedMail]]]:
        """Start parsing the queued messages not handed over before, PART a task; returns
        the tasks started (none while the second process starts, or once it is gone)."""
        self._replace_if_gone()
        fresh = [i for i in queued if i not in self._tasks and i not in self._ready]
        started = []
        for start in range(0, len(fresh), PART):
            ids = fresh[start : start + PART]
            task = self._second.submit(parse_stored, ids)
            if task is None:
                break
            self._tasks.update(dict.fromkeys(ids, task))
            started.append(task)
        return started

    def taken(self, intake_ids: Sequence[int]) -> dict[int, ParsedMail]:
        """The batch's messages that the second process parsed (see finished()). Blocks for
        at most WAIT seconds: called in a thread of the daemon."""
        tasks = {self._tasks[i] for i in intake_ids if i in self._tasks}
        # Batches come in the order stored. What is older than this one and still here had
        # its batch go elsewhere (let go after a fault, to come back later): not kept for
        # ever, it is parsed by the worker when it comes back.
        oldest = min(intake_ids, default=0)
        self._tasks = {
            i: task for i, task in self._tasks.items() if task not in tasks and i >= oldest
        }
        self._ready = {i: mail for i, mail in self._ready.items() if i >= oldest}
        self._ready.update(finished(tasks))
        return {i: self._ready.pop(i) for i in intake_ids if i in self._ready}

    def _replace_if_gone(self) -> None:
        """A second process that died (killed, out of memory) is replaced: the daemon runs
        for months, and one death must not cost the speed for the rest of them."""
        if not self._second.gone or time.monotonic() - self._started_at < RESTART_SECONDS:
            return
        log.warning("event=parse_ahead_restarted")
        self._second.close()
        self._tasks.clear()  # the old process's: failed or cancelled
        self._second = self._start()
        self._started_at = time.monotonic()

    def close(self) -> None:
        self._second.close()


# In the second process ---------------------------------------------------------------------

_store: Store | None = None


def _start_reader(config: Config, daemon_pid: int) -> None:
    owned_by(daemon_pid, PARSER_NAME)
    configure_logging(config.logging)
    global _store
    _store = Store(config.database.url, config.database.busy_timeout)


def parse_stored(intake_ids: Sequence[int]) -> dict[int, ParsedMail]:
    """The queued messages still waiting, parsed (those up to PARSE_AHEAD_BYTES: a large one
    is parsed in the worker, so that its parts are held once). One that fails to parse is
    left out: parsed again in the worker, it fails there, where that is handled."""
    assert _store is not None, "parse_stored used before its initializer ran"
    with _store.session() as session:
        query = select(Intake.id).where(
            col(Intake.id).in_(intake_ids),
            Intake.status == RECEIVED,
            col(Intake.size) <= pipeline.PARSE_AHEAD_BYTES,
        )
        waiting = [i for i in session.exec(query) if i is not None]
        raws = stored_raws(session, waiting)
    done = {}
    for intake_id, raw in raws.items():
        try:
            done[intake_id] = pipeline.prepared(raw)
        except Exception:
            continue
    return done
