"""The daemon: SMTP intake, processor, outbox sender and scheduled jobs on one event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from mailgate.config import Config, ConfigError
from mailgate.flows import pipeline
from mailgate.intake.imap import ImapIntake
from mailgate.intake.smtp import SmtpIntake
from mailgate.outbound import outbox
from mailgate.outbound.context import Context
from mailgate.outbound.render import Renderer, TemplateError
from mailgate.outbound.transports import Transport
from mailgate.service.jobs import Scheduler, jobs_for
from mailgate.service.metrics import (
    HttpEndpoints,
    Metrics,
    database_healthy,
    outbox_counts,
    quarantined_count,
    serve_http,
)
from mailgate.service.parts import (
    RESTART_ONLY,
    build_transport,
    outbound_target,
    renewed_renderer,
    reread,
    runtime_part,
)
from mailgate.service.sdnotify import Notifier, keep_watchdog_fed
from mailgate.service.suspects import Suspects
from mailgate.service.workers import Processor, WorkerDied, WorkQueue, build_processor
from mailgate.store.database import StoreUnavailable

log = logging.getLogger("mailgate.daemon")

STORE_RETRY_DELAY = 2.0  # a locked or lost database usually comes back within seconds
# Shutdown, in all at most TimeoutStopSec (30 s) of the unit: intake and running jobs
# together, then the processor, then the outbox sender.
INTAKE_GRACE = 10.0  # an IMAP mailbox's task may store what it is fetching, then stop
JOB_GRACE = 10.0  # a scheduled job already running (a delivery round) may finish
# While senders crowd in (SMTP messages queue for their commit, see GroupCommit.crowding;
# within the last INTAKE_BUSY_SECONDS), processing and sending wait, at most the time given:
# answering senders comes first. A burst is taken at the speed of the disk, then processed.
# Mail that trickles in, however steadily, does not crowd, and so delays nothing.
INTAKE_BUSY_SECONDS = 0.5
PROCESSING_DEFER_SECONDS = 5.0  # then a batch anyway: a long flood still gets processed
# ... a small one: on SQLite it holds the write lock that senders' commits wait for, for as
# long as it takes (a full batch stalled every sender for a tenth of a second or more).
FLOOD_BATCH_SIZE = 2
OUTBOX_DEFER_SECONDS = 5.0
# Queued messages parsed ahead of the worker (where a second process does that), in batches:
# with one, a batch the parser was slow with would be parsed by the worker instead.
LOOK_AHEAD_BATCHES = 2
DRAIN_SECONDS = 10.0  # processing what was stored before shutdown
FLUSH_SECONDS = 5.0  # the last delivery round at shutdown


class Trouble:
    """A failure that may repeat every round: logged when it starts and when it ends."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.active = False

    def failed(self, detail: str) -> None:
        if not self.active:
            log.warning("event=%s_failing %s", self.event, detail)
        self.active = True

    def recovered(self) -> None:
        if self.active:
            log.info("event=%s_recovered", self.event)
        self.active = False


class Daemon:
    """The daemon's parts and the queue and wake-up between them."""

    def __init__(
        self,
        ctx: Context,
        transport: Transport,
        notifier: Notifier,
    ) -> None:
        self.ctx = ctx  # replaced, never changed, by a reload
        self.transport = transport
        self.notifier = notifier
        # One task per mailbox; it stores from its own thread, so it hands over thread-safely.
        self.metrics = Metrics(
            lambda: outbox_counts(self.ctx.store), lambda: quarantined_count(self.ctx.store)
        )
        self.mailboxes = [
            ImapIntake(ctx, m, self.submit_threadsafe, self.metrics.set_imap_lag)
            for m in ctx.config.imap
        ]
        self.imap_stop = asyncio.Event()
        self.imap_tasks: list[asyncio.Task[None]] = []
        self.queue = WorkQueue()
        self.processor: Processor = build_processor(ctx)
        # Messages in hand when a worker process died, and how often; processed alone.
        self.suspects = Suspects()
        # Stored messages queued or being processed, with when they were handed over.
        self.in_hand: dict[int, float] = {}
        # Ids this run has taken up; the left-over job skips them (see offer_pending).
        self.offered: set[int] = set()
        self.wake_outbox = asyncio.Event()
        self.outbox_lock = asyncio.Lock()
        self.stopping = False  # no more retries of processing; leave it for the next start
        self.last_round = False  # the outbox sender's next round is its last
        self.intake = SmtpIntake(ctx, self.submit)
        self.intake.handler.on_reply = self.metrics.refused
        self.scheduler = Scheduler(self, jobs_for(ctx.config), self.metrics.job_succeeded)
        self.store_trouble = Trouble("store")
        self.outbox_trouble = Trouble("outbox")
        self.tasks: list[asyncio.Task[None]] = []
        self.helpers: list[asyncio.Task[None]] = []  # watchdog and reload: cancelled at the end
        self.http: asyncio.Server | None = None
        self.loop = asyncio.get_running_loop()

    async def start(self) -> None:
        await self.intake.start()
        await self._count_deaths()
        self.processing = [
            asyncio.create_task(self.process_loop(), name=f"mailgate-processor-{n}")
            for n in range(max(1, self.ctx.config.processing.workers))
        ]
        self.sender = asyncio.create_task(self.outbox_loop(), name="mailgate-outbox")
        self.tasks = [*self.processing, self.sender]
        self.imap_tasks = [
            asyncio.create_task(box.run(self.imap_stop), name=f"mailgate-{box.source}")
            for box in self.mailboxes
        ]
        self.http = await serve_http(
            self.ctx.config.http.listen, HttpEndpoints(self.metrics, self.healthy)
        )
        # Not awaited: mail can be taken (and stored) while the workers start.
        self._helper(asyncio.to_thread(self.processor.warm_up), "warm-up")
        self.scheduler.start()
        if self.notifier.watchdog_interval:
            watchdog = keep_watchdog_fed(self.loop_healthy, self.notifier)
            self._helper(watchdog, "watchdog")

    def _helper(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.helpers.append(asyncio.create_task(coro, name=f"mailgate-{name}"))

    def submit(self, intake_id: int) -> None:
        """Hand a stored message to the processor (once while it is in hand)."""
        if intake_id in self.in_hand:
            return
        self.in_hand[intake_id] = time.monotonic()
        self.offered.add(intake_id)
        self.queue.put_nowait(intake_id)

    def submit_threadsafe(self, intake_id: int) -> None:
        """submit() for intake that stores from a worker thread (a blocking IMAP poll)."""
        self.loop.call_soon_threadsafe(self.submit, intake_id)

    def offer_pending(self, intake_ids: Sequence[int]) -> None:
        """Stored messages the database says are waiting. One this run took up already may
        still look pending (its commit raced the query): those are skipped. An id is forgotten
        once a later look no longer finds it pending, so `quarantine retry` gets it back here."""
        if self.stopping:
            return
        pending = set(intake_ids)
        self.offered &= pending | self.in_hand.keys()
        for intake_id in intake_ids:
            if intake_id not in self.offered:
                self.submit(intake_id)

    async def process_loop(self) -> None:
        await self._enqueue_pending()
        size = self.ctx.config.processing.batch_size
        while (first := await self.queue.get()) is not None:
            flooded = await self._quiet_intake(PROCESSING_DEFER_SECONDS)
            batch = self._batch_from(first, min(size, FLOOD_BATCH_SIZE) if flooded else size)
            await self._process(batch, self.queue.waiting(LOOK_AHEAD_BATCHES * size))

    def _intake_busy(self) -> bool:
        committer = self.intake.handler.committer
        return time.monotonic() - committer.last_crowded < INTAKE_BUSY_SECONDS

    def _batch_from(self, first: int, size: int) -> list[int]:
        """The first message and what is queued after it, up to `size`. A message that was
        in hand when a worker died goes alone."""
        batch = [first]
        while len(batch) < size and first not in self.suspects and not self.queue.empty():
            intake_id = self.queue.get_nowait()
            if intake_id is None or intake_id in self.suspects:
                self.queue.put_nowait(intake_id)  # for the next round (or the next task)
                break
            batch.append(intake_id)
        return batch

    async def _enqueue_pending(self) -> None:
        """Messages stored but not processed before (a crash, a busy database)."""
        while not self.stopping:
            try:
                ids = await asyncio.to_thread(pipeline.pending_ids, self.ctx)
            except StoreUnavailable as exc:
                self.store_trouble.failed(f"error={str(exc)!r}")
                await asyncio.sleep(STORE_RETRY_DELAY)
                continue
            self.offer_pending(ids)
            return

    async def _process(self, batch: list[int], queued: Sequence[int] = ()) -> None:
        try:
            outcomes = await self.processor.process(self.ctx, batch, queued)
        except StoreUnavailable as exc:
            # The messages stay `received`; try again shortly (or at the next start).
            self.store_trouble.failed(f"intake_ids={_ids(batch)} error={str(exc)!r}")
            await self._retry_later(batch)
            return
        except WorkerDied as exc:
            await self._worker_died(batch, exc)
            return
        except Exception:  # process_batch() quarantines bad mail itself; this is a fault of ours
            log.exception("event=process_failed intake_ids=%s", _ids(batch))
            self._let_go(batch)
            return
        for outcome in outcomes:
            handed = self.in_hand.pop(outcome.intake_id, None)
            self.suspects.pop(outcome.intake_id, None)
            if outcome.source:  # an outcome reached now, not a repeat delivery of a done one
                waited = None if handed is None else time.monotonic() - handed
                self.metrics.outcome(outcome.source, outcome.status, outcome.created, waited)
        self.store_trouble.recovered()
        self.wake_outbox.set()

    def _let_go(self, batch: list[int]) -> None:
        """No longer in hand: the left-over job or the next start takes them up."""
        for intake_id in batch:
            self.in_hand.pop(intake_id, None)

    async def _retry_later(self, batch: list[int]) -> None:
        if self.stopping:
            self._let_go(batch)
            return
        await asyncio.sleep(STORE_RETRY_DELAY)
        for intake_id in batch:
            self.queue.put_nowait(intake_id)

    async def _worker_died(self, batch: list[int], exc: WorkerDied) -> None:
        """Take the batch up again, each message alone; quarantine one that was in hand at
        every death, rather than let it kill worker after worker."""
        log.error("event=worker_died intake_ids=%s error=%r", _ids(batch), str(exc))
        await self._suspected(self.suspects.after_death(batch), exc.why)
        await self._retry_later([i for i in batch if i in self.suspects])

    async def _count_deaths(self) -> None:
        """Messages the daemon's own process died with before this start (it processes
        mail itself with `workers = 0`): the same rule as for a worker's death."""
        try:
            deaths = await asyncio.to_thread(self.processor.deaths)
        except StoreUnavailable as exc:  # the marks stay, for the next start to count
            self.store_trouble.failed(f"error={str(exc)!r}")
            return
        for intake_id, times in deaths.items():
            log.error("event=daemon_died_with intake_id=%s deaths=%d", intake_id, times)
        await self._suspected(deaths, "ended the daemon process")

    async def _suspected(self, deaths: dict[int, int], why: str) -> None:
        for outcome in await self.suspects.judge(self.ctx, deaths, why):
            self.in_hand.pop(outcome.intake_id, None)
            self.metrics.outcome(outcome.source, outcome.status, False, None)

    async def outbox_loop(self) -> None:
        # Woken by new mail to send; retries that come due are the outbox-retry job's.
        while True:
            # Read the flag before the round, so rows committed during it get one more.
            final = self.last_round
            await self._deliver()
            if final:
                return
            await self.wake_outbox.wait()
            await self._quiet_intake(OUTBOX_DEFER_SECONDS)
            self.wake_outbox.clear()

    async def _quiet_intake(self, longest: float) -> bool:
        """Wait while senders crowd in, `longest` at most; whether they still do. Processing
        and sending take the core intake needs to answer them, and on SQLite a processing
        transaction holds the one write lock that intake's commits (and their 250s) wait for."""
        deadline = time.monotonic() + longest
        while self._intake_busy() and not self.stopping:
            if time.monotonic() >= deadline:
                return True
            await asyncio.sleep(INTAKE_BUSY_SECONDS / 5)
        return False

    async def _deliver(self) -> None:
        try:
            async with self.outbox_lock:
                self.metrics.delivered(await outbox.deliver_due(self.ctx, self.transport))
        except Exception as exc:  # a database or transport fault must not end the sender
            self.outbox_trouble.failed(f"error_type={type(exc).__name__} error={str(exc)!r}")
            return
        self.outbox_trouble.recovered()

    def loop_healthy(self) -> bool:
        """The processor and the sender are alive (and this loop ran the check at all)."""
        return not self.stopping and all(not task.done() for task in self.tasks)

    async def healthy(self) -> bool:
        return self.loop_healthy() and await database_healthy(self.ctx.store)

    async def reload_loop(self, hangup: asyncio.Event) -> None:
        while True:
            await hangup.wait()
            hangup.clear()
            await self.reload()

    async def reload(self) -> None:
        """SIGHUP: read the configuration file and templates again; a bad file changes nothing."""
        self.notifier.reloading("reloading configuration and templates")
        old = self.ctx.config
        try:
            fresh = await asyncio.to_thread(reread, old)
            renderer = await asyncio.to_thread(renewed_renderer, fresh)
        except (ConfigError, ValueError, TemplateError) as exc:
            log.error("event=reload_refused config=%s error=%r", old.source, str(exc))
            self.notifier.ready(f"reload refused, previous configuration kept: {exc}")
            return
        await self._adopt(runtime_part(old, fresh), renderer)
        self.processor.reloaded()
        self.scheduler.update(jobs_for(self.ctx.config))
        changed = [name for name in RESTART_ONLY if getattr(old, name) != getattr(fresh, name)]
        if changed:
            log.warning(
                "event=reload_needs_restart sections=%s note=%r",
                ",".join(changed),
                "listen addresses, database, IMAP and logging change at the next restart",
            )
        log.info("event=reloaded config=%s outbound=%s", old.source, outbound_target(fresh))
        self.notifier.ready(f"reloaded; {listening_status(self)}")

    async def _adopt(self, config: Config, renderer: Renderer) -> None:
        old_outbound, old_oauth = self.ctx.config.outbound, self.ctx.config.oauth
        self.ctx = dataclasses.replace(self.ctx, config=config, renderer=renderer)
        if config.outbound == old_outbound and config.oauth == old_oauth:
            return
        # Not in the middle of a delivery round: that one finishes on the old relay.
        async with self.outbox_lock:
            retired, self.transport = self.transport, build_transport(config)
        await retired.close()

    async def shutdown(self) -> None:
        """421 for newcomers, finish what is in hand, send what can be sent, stop."""
        log.info("event=stopping")
        self.notifier.stopping("stopping: finishing the mail in hand")
        self.stopping = True
        self.intake.begin_shutdown()
        self.imap_stop.set()
        await asyncio.gather(
            self.scheduler.stop(JOB_GRACE),
            self.intake.stop(self.ctx.config.smtp.shutdown_grace_seconds),
            *(_finish(task, INTAKE_GRACE) for task in self.imap_tasks),
        )
        for _ in self.processing:
            self.queue.put_nowait(None)
        await asyncio.gather(*(_finish(task, DRAIN_SECONDS) for task in self.processing))
        await asyncio.to_thread(self.processor.close)
        self.last_round = True
        self.wake_outbox.set()
        await _finish(self.sender, FLUSH_SECONDS)
        for task in self.helpers:
            task.cancel()
        await asyncio.gather(*self.helpers, return_exceptions=True)
        if self.http is not None:
            self.http.close()
            await self.http.wait_closed()


async def _finish(task: asyncio.Task[None], timeout: float) -> None:
    """Let a task end by itself within `timeout`; cancel it after that."""
    try:
        await asyncio.wait_for(task, timeout)
    except TimeoutError:
        log.warning("event=shutdown_timeout task=%s", task.get_name())


def _ids(batch: list[int]) -> str:
    return ",".join(map(str, batch))


def listening_status(daemon: Daemon) -> str:
    return f"taking mail on {daemon.intake.address}"
