"""Scheduled jobs: the one list of them and their APScheduler wiring on the daemon's loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mailgate.config import Config
from mailgate.flows import digest, pipeline, reminders, retention
from mailgate.outbound import outbox
from mailgate.outbound.context import Context
from mailgate.outbound.transports import Transport
from mailgate.service.metrics import Metrics
from mailgate.store import tally
from mailgate.store.locks import AdvisoryLock

log = logging.getLogger("mailgate.jobs")


class Runtime(Protocol):
    """What jobs use of the running daemon; read at every run, so a reload takes effect."""

    ctx: Context
    transport: Transport
    outbox_lock: asyncio.Lock  # one delivery round at a time, whoever starts it
    metrics: Metrics

    def offer_pending(self, intake_ids: Sequence[int]) -> None: ...


@dataclass(frozen=True)
class Every:
    seconds: float

    def describe(self) -> str:
        return f"every {self.seconds:g} s"

    def trigger(self) -> BaseTrigger:
        return IntervalTrigger(seconds=self.seconds, timezone=UTC)


@dataclass(frozen=True)
class Cron:
    expression: str  # crontab fields: "0 7 * * mon-fri"
    timezone: str = "UTC"  # the zone the fields are read in

    def describe(self) -> str:
        return f"cron {self.expression} ({self.timezone})"

    def trigger(self) -> BaseTrigger:
        return CronTrigger.from_crontab(self.expression, timezone=ZoneInfo(self.timezone))


@dataclass(frozen=True)
class Job:
    name: str
    what: str
    schedule: Every | Cron
    run: Callable[[Runtime], Awaitable[None]]


async def retry_outbox(rt: Runtime) -> None:
    async with rt.outbox_lock:
        rt.metrics.delivered(await outbox.deliver_due(rt.ctx, rt.transport))


async def process_left_over(rt: Runtime) -> None:
    rt.offer_pending(await asyncio.to_thread(pipeline.pending_ids, rt.ctx))


async def _queue_and_send(rt: Runtime, work: Callable[[Context], int]) -> None:
    """Run the work off the loop; mail it queued goes out now, not at the next retry."""
    if await asyncio.to_thread(work, rt.ctx):
        await retry_outbox(rt)


async def send_reminders(rt: Runtime) -> None:
    await _queue_and_send(rt, reminders.run_reminders)


async def escalate_breaches(rt: Runtime) -> None:
    await _queue_and_send(rt, reminders.escalate_breaches)


async def send_digest(rt: Runtime) -> None:
    await _queue_and_send(rt, digest.send_digests)


async def apply_retention(rt: Runtime) -> None:
    await asyncio.to_thread(retention.run, rt.ctx)


def _fold_ticket_counts(ctx: Context) -> None:
    with ctx.store.session() as session:
        rows = tally.fold(session)
    if rows:
        log.info("event=ticket_counts_folded rows=%d", rows)


async def fold_ticket_counts(rt: Runtime) -> None:
    await asyncio.to_thread(_fold_ticket_counts, rt.ctx)


# How often reminders and first-response targets are checked.
REMINDER_INTERVAL = Every(300)
# A desk's busiest hour adds a few thousand rows to the counts; `stats` sums them at ease.
TICKET_COUNTS_INTERVAL = Every(600)


def jobs_for(cfg: Config) -> tuple[Job, ...]:
    """Every scheduled job, in one place: adding one is adding a line. IMAP polling is not
    here: each mailbox's own task idles or polls it, and a second poller would race it."""
    daily = Job(
        "daily-digest",
        "the daily digest to agents and the team",
        Cron(cfg.digest.schedule, cfg.tickets.timezone),
        send_digest,
    )
    keep = cfg.retention
    retain = Job(
        "retention",
        "drop the bytes of old mail whose outcome is committed",
        Cron(keep.schedule, cfg.tickets.timezone),
        apply_retention,
    )
    return (
        Job("outbox-retry", "send queued mail whose retry is due", Every(30), retry_outbox),
        Job(
            "left-over-messages",
            "process stored messages still without an outcome",
            Every(60),
            process_left_over,
        ),
        Job(
            "reminders",
            "hold resubmissions, confirmation reminders, closing unconfirmed tickets",
            REMINDER_INTERVAL,
            send_reminders,
        ),
        Job(
            "sla-escalation",
            "tell agents of missed first-response targets",
            REMINDER_INTERVAL,
            escalate_breaches,
        ),
        Job(
            "ticket-counts",
            "fold the changes to the ticket counts `stats` shows into one row a pair",
            TICKET_COUNTS_INTERVAL,
            fold_ticket_counts,
        ),
        *([daily] if cfg.digest.schedule else []),  # an empty schedule: no digest
        # Only while some days are set: `jobs list` shows whether retention is on.
        *([retain] if keep.raw_mail_days or keep.sent_mail_days or keep.outbox_days else []),
    )


class Scheduler:
    """The jobs on the daemon's event loop. A failing run is logged and tried at the next time."""

    def __init__(
        self,
        runtime: Runtime,
        jobs: Sequence[Job],
        on_success: Callable[[str], None] = lambda job: None,
    ) -> None:
        self.runtime = runtime
        self.on_success = on_success  # a job's name, each time a run of it ends well
        self.jobs = tuple(jobs)
        self.running: set[asyncio.Task[None]] = set()
        self.failing: set[str] = set()
        self.stopping = False
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Call on the running loop that should run the jobs."""
        loop = asyncio.get_running_loop()
        # Coalesce and one instance: a job late after a busy spell runs once, not many times.
        defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        self._scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC, job_defaults=defaults)
        for job in self.jobs:
            self._scheduler.add_job(
                self._run, job.schedule.trigger(), args=[job], id=job.name, name=job.name
            )
        self._scheduler.start()
        log.info("event=jobs_scheduled jobs=%s", ",".join(job.name for job in self.jobs))

    def update(self, jobs: Sequence[Job]) -> list[str]:
        """Take a new job list (a reload changed the digest's schedule, or turned it on or
        off): jobs whose schedule changed are rescheduled, new ones added, dropped ones
        removed; a run in progress finishes. The names of the jobs that changed."""
        old = {job.name: job for job in self.jobs}
        new = {job.name: job for job in jobs}
        changed = sorted(
            name
            for name in old.keys() | new.keys()
            if name not in old or name not in new or old[name].schedule != new[name].schedule
        )
        self.jobs = tuple(jobs)
        if self._scheduler is None or not changed:
            return changed
        for name in changed:
            if name in old:
                self._scheduler.remove_job(name)
            if name in new:
                job = new[name]
                self._scheduler.add_job(
                    self._run, job.schedule.trigger(), args=[job], id=job.name, name=job.name
                )
        log.info("event=jobs_rescheduled jobs=%s", ",".join(changed))
        return changed

    def next_runs(self) -> dict[str, datetime]:
        """When each scheduled job runs next."""
        if self._scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    async def stop(self, timeout: float) -> None:
        """No new runs; let runs in progress finish within `timeout` (then they are cancelled)."""
        self.stopping = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            # The AsyncIO scheduler shuts down in a callback on the loop: let it run, so no
            # run starts after the ones waited for here.
            await asyncio.sleep(0)
        if self.running:
            _, late = await asyncio.wait(set(self.running), timeout=timeout)
            for task in late:
                task.cancel()

    async def _run(self, job: Job) -> None:
        # Shielded: stopping the scheduler cancels its own task, but a delivery round that has
        # claimed mail should finish rather than leave the rows leased.
        task = asyncio.create_task(self._guarded(job), name=f"mailgate-job-{job.name}")
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The scheduler's shutdown cancels this wait, not the run, which stop() awaits;
            # told to the scheduler, the cancelled wait would be logged as a job that raised.
            if not self.stopping:
                raise

    async def _guarded(self, job: Job) -> None:
        # Several instances on PostgreSQL: a run that finds another instance's run of the
        # same job in progress leaves the work to it.
        lock = AdvisoryLock(self.runtime.ctx.store, f"job:{job.name}")
        if not await asyncio.to_thread(lock.try_acquire):
            log.debug("event=job_skipped job=%s reason=running_elsewhere", job.name)
            return
        try:
            await self._run_job(job)
        finally:
            await asyncio.to_thread(lock.release)

    async def _run_job(self, job: Job) -> None:
        try:
            await job.run(self.runtime)
        except Exception as exc:  # logged once per streak; the next run may succeed
            if job.name not in self.failing:
                log.warning(
                    "event=job_failed job=%s error_type=%s error=%r",
                    job.name,
                    type(exc).__name__,
                    str(exc),
                )
            self.failing.add(job.name)
            return
        self.on_success(job.name)
        if job.name in self.failing:
            log.info("event=job_recovered job=%s", job.name)
        self.failing.discard(job.name)


def describe(jobs: Sequence[Job]) -> list[dict[str, str]]:
    """The jobs as rows for `mailgate jobs list`."""
    return [{"name": j.name, "schedule": j.schedule.describe(), "what": j.what} for j in jobs]
