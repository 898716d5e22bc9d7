"""While senders crowd in, the daemon answers them first: processing waits, and when it can
wait no longer it takes a small batch, whose transaction keeps SQLite's write lock (which
every sender's commit needs) only briefly."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from mailgate.service import daemon
from mailgate.store.models import Ticket
from tests.daemon_harness import count, daemon_config, running, send_data
from tests.helpers import poll
from tests.mails import make_mail


def test_a_flood_is_processed_two_at_a_time_and_the_rest_at_once_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crowded = threading.Event()  # stands in for senders queueing for their commits
    batches: list[tuple[int, bool]] = []  # each processed batch's size, and if crowded then
    gave_up: list[bool] = []  # the processing loop's waits: did the flood outlast them
    real_quiet, real_process = daemon.Daemon._quiet_intake, daemon.Daemon._process

    async def quiet(self: daemon.Daemon, longest: float) -> bool:
        flooded = await real_quiet(self, longest)
        if longest == daemon.PROCESSING_DEFER_SECONDS:  # not the outbox's wait
            gave_up.append(flooded)
        return flooded

    async def process(self: daemon.Daemon, batch: list[int], queued: Sequence[int] = ()) -> None:
        batches.append((len(batch), gave_up[-1]))
        await real_process(self, batch, queued)

    monkeypatch.setattr(daemon.Daemon, "_intake_busy", lambda _self: crowded.is_set())
    monkeypatch.setattr(daemon.Daemon, "_quiet_intake", quiet)
    monkeypatch.setattr(daemon.Daemon, "_process", process)
    monkeypatch.setattr(daemon, "PROCESSING_DEFER_SECONDS", 0.5)
    crowded.set()
    with running(daemon_config(tmp_path)) as mg:
        for n in range(8):
            mail = make_mail(subject=f"Request {n}", sender=f"customer{n}@acme.example")
            assert send_data(mg.address, mail)[0] == 250
        # The flood goes on: after the wait, processing takes a batch anyway, a small one.
        poll(lambda: count(mg.ctx, Ticket) >= 2, what="a batch processed during the flood")
        crowded.clear()
        poll(lambda: count(mg.ctx, Ticket) == 8, what="every request a ticket")
    during = [size for size, flood in batches if flood]
    after = [size for size, flood in batches if not flood]
    assert during and all(size <= daemon.FLOOD_BATCH_SIZE for size in during)
    assert after == [8 - sum(during)]  # what waited goes in one batch (20 by default)
