"""The daemon: SMTP intake, processor, outbox sender and scheduled jobs on one event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import resource
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from mailgate import outbox, pipeline, repeats
from mailgate.app import build_context, build_renderer, build_transport
from mailgate.config import EMBEDDED, Config, ConfigError, load
from mailgate.context import Context
from mailgate.instance import AlreadyRunning, hold
from mailgate.intake.imap import ImapIntake
from mailgate.intake.smtp import ListenError, SmtpIntake
from mailgate.jobs import Scheduler, jobs_for
from mailgate.logs import configure_logging
from mailgate.metrics import HttpEndpoints, Metrics, start_http
from mailgate.models import QUARANTINED, Intake, Outbox
from mailgate.render import Renderer, TemplateError
from mailgate.sdnotify import Notifier
from mailgate.store import Store, StoreUnavailable
from mailgate.transports import Transport
from mailgate.workers import Processor, WorkerDied, build_processor

log = logging.getLogger("mailgate.daemon")

EX_OK, EX_UNAVAILABLE, EX_TEMPFAIL = 0, 69, 75  # sysexits(3)
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
# With no hard limit on open files, the soft one is raised this far (the kernel's default
# ceiling, nr_open, is 1,048,576).
OPEN_FILES_CEILING = 65536
DRAIN_SECONDS = 10.0  # processing what was stored before shutdown
FLUSH_SECONDS = 5.0  # the last delivery round at shutdown
HEALTH_TIMEOUT = 2.0  # /healthz: a database that does not answer SELECT 1 by then is down
# Sections a reload cannot apply: sockets are bound and the database is open.
RESTART_ONLY = ("database", "smtp", "imap", "http", "logging", "processing")
# A batch whose worker process died is taken up again message by message; a message that
# was in hand at this many deaths is quarantined, since it is likely what kills the worker
# (or the daemon's own process, where it processes mail itself).
MAX_WORKER_DEATHS = 2


class WorkQueue(asyncio.Queue[int | None]):
    """Stored messages for the processing tasks, first come first; None: no more work."""

    def waiting(self, limit: int) -> list[int]:
        """The ids queued next, up to limit, left in the queue (to parse them ahead)."""
        # `_queue` is the deque that asyncio.Queue keeps for its subclasses to use.
        return [i for i in itertools.islice(self._queue, limit) if i is not None]


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
        self.suspects: dict[int, int] = {}
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
        await self._start_http()
        # Not awaited: mail can be taken (and stored) while the workers start.
        self._helper(asyncio.to_thread(self.processor.warm_up), "warm-up")
        self.scheduler.start()
        if self.notifier.watchdog_interval:
            self._helper(self.watchdog_loop(self.notifier.watchdog_interval), "watchdog")

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
        deaths = {intake_id: self.suspects.get(intake_id, 0) + 1 for intake_id in batch}
        await self._suspected(deaths, exc.why)
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
        """Messages in hand when a process died, with how often: processed alone from now
        on, and quarantined at MAX_WORKER_DEATHS. `why`: what processing them did ("ended
        the worker process", "took longer than 30 s")."""
        self.suspects.update(deaths)
        for intake_id in [i for i, times in deaths.items() if times >= MAX_WORKER_DEATHS]:
            reason = f"processing it {why} {MAX_WORKER_DEATHS} times"
            try:
                outcome = await asyncio.to_thread(pipeline.quarantine, self.ctx, intake_id, reason)
            except StoreUnavailable:
                continue  # still suspect: taken up again, and alone
            log.error("event=quarantine intake_id=%s error=%r", intake_id, reason)
            self.suspects.pop(intake_id, None)
            self.in_hand.pop(intake_id, None)
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

    async def _start_http(self) -> None:
        listen = self.ctx.config.http.listen
        if not listen:
            return
        try:
            self.http = await start_http(listen, HttpEndpoints(self.metrics, self.healthy))
        except OSError as exc:
            # Mail matters more than metrics: intake goes on without them.
            log.error("event=http_listen_failed listen=%s error=%r", listen, str(exc))

    def loop_healthy(self) -> bool:
        """The processor and the sender are alive (and this loop ran the check at all)."""
        return not self.stopping and all(not task.done() for task in self.tasks)

    async def healthy(self) -> bool:
        if not self.loop_healthy():
            return False
        try:
            await asyncio.wait_for(
                asyncio.to_thread(database_answers, self.ctx.store), HEALTH_TIMEOUT
            )
        except Exception:  # any failure to answer is "unhealthy", whatever its kind
            return False
        return True

    async def watchdog_loop(self, interval: float) -> None:
        # Not tied to the database: an outage there is answered with 451, not a restart.
        while True:
            if self.loop_healthy():
                self.notifier.watchdog()
            await asyncio.sleep(interval)

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


def outbox_counts(store: Store) -> dict[str, int]:
    """Outbox rows by status, for the metrics scrape."""
    with store.session() as session:
        query = select(Outbox.status, func.count()).group_by(Outbox.status)
        return {status: int(number) for status, number in session.exec(query)}


def quarantined_count(store: Store) -> int:
    """Stored messages in quarantine, for the metrics scrape."""
    with store.session() as session:
        query = select(func.count()).select_from(Intake).where(Intake.status == QUARANTINED)
        return int(session.exec(query).one())


def database_answers(store: Store) -> None:
    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def reread(old: Config) -> Config:
    """The configuration file again; the embedded default has no file and stays as it is."""
    return old if old.source == EMBEDDED else load(old.source)


def runtime_part(old: Config, fresh: Config) -> Config:
    """The new configuration, with the sections only a restart can change kept as they were."""
    kept = {name: getattr(old, name) for name in RESTART_ONLY}
    return dataclasses.replace(fresh, **kept)


def renewed_renderer(config: Config) -> Renderer:
    """A new renderer with every template compiled, as `config check` compiles them; the
    current one stays in use until this succeeds. ValueError for a default language that
    is no language tag, TemplateError for a template that cannot be compiled."""
    renderer = build_renderer(config)
    renderer.preload()
    return renderer


def outbound_target(config: Config) -> str:
    out = config.outbound
    return f"file:{out.directory}" if out.transport == "file" else f"smtp:{out.host}:{out.port}"


def describe(ctx: Context, listening: str, http: str = "") -> str:
    """The start-up line: where mail comes in, where it is kept and where it goes."""
    database = make_url(ctx.config.database.url).render_as_string(hide_password=True)
    return (
        f"event=started listen={listening} database={database} "
        f"outbound={outbound_target(ctx.config)} http={http or '-'}"
    )


def listening_status(daemon: Daemon) -> str:
    return f"taking mail on {daemon.intake.address}"


def http_address(server: asyncio.Server | None) -> str:
    if server is None:
        return ""
    return ",".join("{}:{}".format(*sock.getsockname()[:2]) for sock in server.sockets)


async def serve(
    ctx: Context,
    transport: Transport,
    stop: asyncio.Event,
    ready: Callable[[], None] | None = None,
    *,
    hangup: asyncio.Event | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Run until `stop` is set, then drain and return; reload whenever `hangup` is set.
    Raises ListenError when the SMTP address cannot be bound; `ready` is called once mail
    can be taken."""
    # Out of file descriptors, accept() fails many times a second: logged once, then counted.
    repeats.install(asyncio.get_running_loop(), repeats.Repeats())
    daemon = Daemon(ctx, transport, notifier or Notifier({}))
    await daemon.start()
    log.info(describe(ctx, daemon.intake.address, http_address(daemon.http)))
    if hangup is not None:
        daemon._helper(daemon.reload_loop(hangup), "reload")
    daemon.notifier.ready(listening_status(daemon))
    if ready is not None:
        ready()
    await stop.wait()
    await daemon.shutdown()
    await daemon.transport.close()
    log.info("event=stopped")


async def _serve_until_signalled(ctx: Context, transport: Transport) -> None:
    stop, hangup = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    handlers = {signal.SIGINT: stop.set, signal.SIGTERM: stop.set, signal.SIGHUP: hangup.set}
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        await serve(ctx, transport, stop, hangup=hangup, notifier=Notifier())
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one, as far as the kernel allows: each
    SMTP session takes a descriptor, and 1,024 is soon reached. The soft limit afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_CEILING if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:  # the kernel's ceiling is lower: keep ours
            log.warning("event=open_files_limit_kept soft=%s error=%r", soft, str(exc))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run(config: Config) -> int:
    """`mailgate run`: serve in the foreground until SIGINT or SIGTERM; a sysexits status."""
    configure_logging(config.logging)
    raise_open_files_limit()
    try:
        # Before the schema check: a second daemon must not even migrate. IMAP polled
        # twice would store each message twice.
        instance = hold(config.database.url)
    except AlreadyRunning as exc:
        # Temporary: it can start once the other has stopped (a restart that overlaps).
        log.error("event=already_running error=%r", str(exc))
        return EX_TEMPFAIL
    ctx = build_context(config)
    try:
        # A broken template is refused at the start, as at a reload, not at the first mail.
        ctx.renderer.preload()
        asyncio.run(_serve_until_signalled(ctx, build_transport(config)))
    except ListenError as exc:
        log.error("event=listen_failed error=%r", str(exc))
        return EX_UNAVAILABLE
    finally:
        ctx.store.dispose()
        if instance is not None:
            instance.release()
    return EX_OK
