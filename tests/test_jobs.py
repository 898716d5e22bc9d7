"""Scheduled jobs: the list the CLI shows, and jobs run by the real scheduler on a real loop."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from mailgate.config import Config, DigestConfig, TicketsConfig
from mailgate.outbound.context import Context
from mailgate.outbound.transports import Transport
from mailgate.service import jobs
from mailgate.service.app import build_context, build_transport
from mailgate.service.jobs import Every, Job, Scheduler
from mailgate.service.metrics import Metrics
from mailgate.store.models import QUEUED, SENT, Outbox
from mailgate.store.spool import accept
from tests.daemon_harness import CUSTOMER, SUPPORT, daemon_config
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]


class Runtime:
    """The parts of a daemon the jobs use, without the daemon around them."""

    def __init__(self, ctx: Context, transport: Transport) -> None:
        self.ctx = ctx
        self.transport = transport
        self.outbox_lock = asyncio.Lock()
        self.offered: list[int] = []
        self.metrics = Metrics()

    def offer_pending(self, intake_ids: Sequence[int]) -> None:
        self.offered.extend(intake_ids)


async def poll_async(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Await until the condition (checked in a thread) holds; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the job")
        await asyncio.sleep(0.02)


def queue_overdue_mail(ctx: Context) -> int:
    """An outbox row whose retry was due an hour ago, as after a relay outage."""
    earlier = ctx.clock() - timedelta(hours=1)
    raw = b"From: support@example.com\r\nTo: alice@acme.example\r\nSubject: hi\r\n\r\nhello\r\n"
    row = Outbox(
        template="acknowledgement",
        envelope_from=SUPPORT,
        to_addrs=CUSTOMER,
        subject="hi",
        message_id="overdue@example.com",
        raw=raw,
        attempts=1,
        next_attempt_at=earlier,
        created_at=earlier,
    )
    with ctx.store.session() as session:
        session.add(row)
        session.flush()
        return row.id or 0


def outbox_status(ctx: Context, row_id: int) -> str:
    with ctx.store.session() as session:
        row = session.get(Outbox, row_id)
        assert row is not None
        return row.status


def soon(name: str) -> Job:
    """A job of the real list, on a schedule short enough for a test."""
    (job,) = [j for j in jobs.jobs_for(Config()) if j.name == name]
    return dataclasses.replace(job, schedule=Every(0.05))


def run_job_until(runtime: Runtime, name: str, condition: Callable[[], bool]) -> None:
    """The real scheduler running one job on a short schedule until the condition holds."""

    async def scenario() -> None:
        scheduler = Scheduler(runtime, [soon(name)])
        scheduler.start()
        try:
            await poll_async(condition)
        finally:
            await scheduler.stop(5)

    asyncio.run(scenario())


def list_jobs(cwd: Path, config_text: str | None = None) -> list[dict[str, str]]:
    """`mailgate jobs list --format json` as a separate process, from `cwd`."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MAILGATE_CONFIG", None)
    if config_text is not None:
        (cwd / "mailgate.toml").write_text(config_text, encoding="utf-8")
    command = [sys.executable, "-m", "mailgate", "jobs", "list", "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_jobs_list_json_needs_no_configuration(tmp_path: Path) -> None:
    listed = list_jobs(tmp_path)
    assert [row["name"] for row in listed] == [
        "outbox-retry",
        "left-over-messages",
        "reminders",
        "sla-escalation",
        "ticket-counts",
        "daily-digest",
    ]
    assert [row["schedule"] for row in listed] == [
        "every 30 s",
        "every 60 s",
        "every 300 s",
        "every 300 s",
        "every 600 s",
        "cron 0 7 * * mon-fri (UTC)",
    ]
    assert all(row["what"] for row in listed)
    assert not list(tmp_path.iterdir())  # no database was made


def test_jobs_list_shows_the_configured_digest_schedule(tmp_path: Path) -> None:
    config = (
        f'[database]\nurl = "sqlite:///{tmp_path}/db/mailgate.db"\n'
        '[tickets]\ntimezone = "Europe/Berlin"\n[digest]\nschedule = "30 6 * * *"\n'
    )
    (digest,) = [row for row in list_jobs(tmp_path, config) if row["name"] == "daily-digest"]
    assert digest["schedule"] == "cron 30 6 * * * (Europe/Berlin)"
    assert not (tmp_path / "db").exists()  # still no database


def test_empty_digest_schedule_means_no_digest_job(tmp_path: Path) -> None:
    listed = list_jobs(tmp_path, '[digest]\nschedule = ""\n')
    assert "daily-digest" not in [row["name"] for row in listed]


def test_outbox_retry_job_sends_overdue_mail(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    ctx = build_context(config)
    row_id = queue_overdue_mail(ctx)
    runtime = Runtime(ctx, build_transport(config))

    try:
        run_job_until(runtime, "outbox-retry", lambda: outbox_status(ctx, row_id) == SENT)
    finally:
        ctx.store.dispose()
    (sent,) = Path(config.outbound.directory).glob("*.eml")
    assert b"hello" in sent.read_bytes()


def test_outbox_retry_leaves_mail_that_is_not_due(tmp_path: Path) -> None:
    ctx = build_context(daemon_config(tmp_path))
    row_id = queue_overdue_mail(ctx)
    with ctx.store.session() as session:
        row = session.exec(select(Outbox)).one()
        row.next_attempt_at = ctx.clock() + timedelta(hours=1)
        session.add(row)
    try:
        asyncio.run(jobs.retry_outbox(Runtime(ctx, build_transport(ctx.config))))
        assert outbox_status(ctx, row_id) == QUEUED
    finally:
        ctx.store.dispose()


def test_left_over_job_offers_stored_messages(tmp_path: Path) -> None:
    ctx = build_context(daemon_config(tmp_path))
    stored = accept(ctx.store, make_mail(), "smtp", ctx.clock(), CUSTOMER, [SUPPORT])
    runtime = Runtime(ctx, build_transport(ctx.config))
    try:
        asyncio.run(jobs.process_left_over(runtime))
    finally:
        ctx.store.dispose()
    assert runtime.offered == [stored.intake_id]


def test_failing_job_is_logged_once_then_its_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.jobs")
    ctx = build_context(daemon_config(tmp_path))
    runtime = Runtime(ctx, build_transport(ctx.config))
    runs: list[int] = []

    def flaky(intake_ids: Sequence[int]) -> None:
        runs.append(1)
        if len(runs) <= 3:
            raise ConnectionError("processor gone")

    runtime.offer_pending = flaky  # type: ignore[method-assign]

    try:
        run_job_until(runtime, "left-over-messages", lambda: "event=job_recovered" in caplog.text)
    finally:
        ctx.store.dispose()
    assert caplog.text.count("event=job_failed job=left-over-messages") == 1
    assert "processor gone" in caplog.text


def test_a_job_running_when_the_daemon_stops_finishes_without_an_error_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping the scheduler cancels its wait for a run, not the run: the run finishes,
    and nothing logs the cancelled wait as a job that raised (a traceback at error level
    at every stop that fell into a job's run)."""
    caplog.set_level(logging.INFO)
    ctx = build_context(daemon_config(tmp_path))
    runtime = Runtime(ctx, build_transport(ctx.config))
    started, finished = asyncio.Event(), []

    async def slow(rt: object) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(True)

    async def scenario() -> None:
        scheduler = Scheduler(runtime, [Job("slow", "a slow run", Every(0.05), slow)])
        scheduler.start()
        await asyncio.wait_for(started.wait(), 5)
        await scheduler.stop(5)

    try:
        asyncio.run(scenario())
    finally:
        ctx.store.dispose()
    assert finished == [True]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_reload_reschedules_the_digest_and_leaves_the_rest(tmp_path: Path) -> None:
    ctx = build_context(daemon_config(tmp_path))

    def config(schedule: str) -> Config:
        return Config(
            tickets=TicketsConfig(timezone="Europe/Berlin"),
            digest=DigestConfig(schedule=schedule),
        )

    async def scenario() -> None:
        runtime = Runtime(ctx, build_transport(ctx.config))
        scheduler = Scheduler(runtime, jobs.jobs_for(config("0 7 * * *")))
        scheduler.start()
        try:
            before = scheduler.next_runs()
            assert (before["daily-digest"].hour, before["daily-digest"].minute) == (7, 0)
            assert scheduler.update(jobs.jobs_for(config("30 18 * * *"))) == ["daily-digest"]
            after = scheduler.next_runs()
            assert (after["daily-digest"].hour, after["daily-digest"].minute) == (18, 30)
            assert str(after["daily-digest"].tzinfo) == "Europe/Berlin"
            assert after["outbox-retry"] == before["outbox-retry"]  # untouched
            assert scheduler.update(jobs.jobs_for(config(""))) == ["daily-digest"]
            assert "daily-digest" not in scheduler.next_runs()
        finally:
            await scheduler.stop(5)

    asyncio.run(scenario())
    ctx.store.dispose()
