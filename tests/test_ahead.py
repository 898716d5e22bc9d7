"""The daemon's parse-ahead: a second process reads queued messages from the database and
parses them, and the worker gets them with their batch. It must hand over exactly what the
worker would have parsed itself, never a message that is not waiting any more, and it must
only ever save time: a task not begun is taken back, one that is stuck is not waited for."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import pytest

from mailgate.flows.pipeline import PARSE_AHEAD_BYTES, prepared, process_batch
from mailgate.outbound.context import Context
from mailgate.reading.parse import ParsedMail
from mailgate.service import ahead as ahead_module
from mailgate.service.ahead import SecondProcess, StoredAhead
from mailgate.service.app import build_context
from mailgate.store.spool import accept
from tests.helpers import Clock, make_config, poll, tickets
from tests.mails import make_mail


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Context]:
    context = dataclasses.replace(build_context(make_config(tmp_path)), clock=Clock())
    yield context
    context.store.dispose()


@pytest.fixture
def stored_ahead(desk: Context) -> Iterator[StoredAhead]:
    ahead = StoredAhead.start(desk.config)
    yield ahead
    ahead.close()


def store(ctx: Context, raw: bytes) -> int:
    return accept(ctx.store, raw, "smtp", ctx.clock(), "", ()).intake_id


def handed_over(ahead: StoredAhead, ids: list[int]) -> list[Future[dict[int, ParsedMail]]]:
    """The tasks for these ids, once the second process has started, finished."""
    tasks = poll(lambda: ahead.look_ahead(ids), timeout=30, what="the second process")
    wait(tasks, timeout=30)
    return tasks


def test_queued_messages_come_parsed_with_their_batch(
    desk: Context, stored_ahead: StoredAhead
) -> None:
    raws = [
        make_mail(subject=f"Drucker {n} druckt nicht", sender=f"k{n}@firma{n}.example")
        for n in range(25)
    ]
    ids = [store(desk, raw) for raw in raws]

    assert len(handed_over(stored_ahead, ids)) == 3  # ten a task

    # Batches need not match the tasks: the second batch gets the rest of a shared task.
    first, second = stored_ahead.taken(ids[:15]), stored_ahead.taken(ids[15:])
    assert sorted(first) == ids[:15] and sorted(second) == ids[15:]
    parsed = first | second
    for intake_id, raw in zip(ids, raws, strict=True):
        assert parsed[intake_id] == prepared(raw)
    assert stored_ahead.taken(ids) == {}  # handed over once

    outcomes = process_batch(desk, ids[:15], first) + process_batch(desk, ids[15:], second)
    assert [o.describe() for o in outcomes] == [f"ticket CID-{1000 + n}" for n in range(25)]
    assert [t.subject for t in tickets(desk)] == [f"Drucker {n} druckt nicht" for n in range(25)]


def test_only_messages_still_waiting_and_small_enough_are_parsed_ahead(
    desk: Context, stored_ahead: StoredAhead
) -> None:
    done = store(desk, make_mail(subject="Schon erledigt"))
    process_batch(desk, [done])
    attachment = (("scan.pdf", "application/pdf", b"%PDF" * (PARSE_AHEAD_BYTES // 3)),)
    large = store(desk, make_mail(subject="Großer Scan", attachments=attachment))
    waiting = store(desk, make_mail(subject="Wartet noch"))

    handed_over(stored_ahead, [done, large, waiting])

    parsed = stored_ahead.taken([done, large, waiting])
    assert list(parsed) == [waiting]  # the large one is parsed by the worker, at its turn
    assert parsed[waiting].subject == "Wartet noch"


def test_a_second_process_that_died_is_replaced(
    desk: Context, stored_ahead: StoredAhead, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ahead_module, "RESTART_SECONDS", 0.0)
    raws = [make_mail(subject=f"Frage {n}") for n in range(20)]
    ids = [store(desk, raw) for raw in raws]
    handed_over(stored_ahead, ids[:10])
    assert sorted(stored_ahead.taken(ids[:10])) == ids[:10]

    for pid in list(stored_ahead._second._pool._processes):  # the OOM killer, say
        os.kill(pid, signal.SIGKILL)
    poll(lambda: stored_ahead._second.submit(int) is None, what="the loss noticed")

    handed_over(stored_ahead, ids[10:])  # by a new second process
    assert sorted(stored_ahead.taken(ids[10:])) == ids[10:]


class HandMade(SecondProcess):
    """A second process whose tasks the test finishes (or not) by hand."""

    def __init__(self) -> None:
        self.tasks: list[Future[Any]] = []

    @property
    def gone(self) -> bool:
        return False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        self.tasks.append(Future())
        return self.tasks[-1]

    def close(self) -> None:
        """Nothing was started."""


def test_a_task_not_begun_is_taken_back_and_a_stuck_one_is_not_waited_for(
    desk: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ahead_module, "WAIT", 0.1)
    raws = [make_mail(subject=f"Frage {n}") for n in range(30)]
    ids = [store(desk, raw) for raw in raws]
    second = HandMade()
    stored_ahead = StoredAhead(lambda: second)
    done, stuck, waiting = stored_ahead.look_ahead(ids)
    done.set_result({i: prepared(raw) for i, raw in zip(ids[:10], raws, strict=False)})
    stuck.set_running_or_notify_cancel()

    start = time.monotonic()
    parsed = stored_ahead.taken(ids)

    assert sorted(parsed) == ids[:10]
    assert waiting.cancelled()  # the worker parses those itself
    assert time.monotonic() - start < 5
    # Taken back, not lost: those not parsed are handed over again when queued again.
    assert len(stored_ahead.look_ahead(ids[10:])) == 2


def test_parsed_mail_whose_batch_went_elsewhere_is_not_kept(desk: Context) -> None:
    raws = [make_mail(subject=f"Frage {n}") for n in range(30)]
    ids = [store(desk, raw) for raw in raws]
    stored_ahead = StoredAhead(HandMade)
    tasks = stored_ahead.look_ahead(ids)
    for task, start in zip(tasks, (0, 10, 20), strict=True):
        task.set_result({i: prepared(raws[start]) for i in ids[start : start + 10]})

    # The first ten were let go (a fault of ours): the next batch is the second ten.
    assert sorted(stored_ahead.taken(ids[10:20])) == ids[10:20]

    assert sorted(stored_ahead.taken(ids[20:])) == ids[20:]  # later ones are kept
    assert len(stored_ahead.look_ahead(ids[:10])) == 1  # the older ones were not
