"""The daemon: SMTP intake, the processor and the outbox sender on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable

from sqlalchemy.engine import make_url

from mailgate import outbox, pipeline
from mailgate.app import build_context, build_transport
from mailgate.config import Config
from mailgate.context import Context
from mailgate.intake.smtp import ListenError, SmtpIntake
from mailgate.store import StoreUnavailable
from mailgate.transports import Transport

log = logging.getLogger("mailgate.daemon")

EX_OK, EX_UNAVAILABLE = 0, 69  # sysexits(3)
LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
# Retries become due by the clock, not by an event, so the outbox is looked at this often.
OUTBOX_INTERVAL = 5.0
STORE_RETRY_DELAY = 2.0  # a locked or lost database usually comes back within seconds
INTAKE_GRACE = 10.0  # SMTP transactions already in DATA get this long to be stored
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

    def __init__(self, ctx: Context, transport: Transport) -> None:
        self.ctx = ctx
        self.transport = transport
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()  # None: no more work
        self.wake_outbox = asyncio.Event()
        self.stopping = False  # no more retries of processing; leave it for the next start
        self.last_round = False  # the outbox sender's next round is its last
        self.intake = SmtpIntake(ctx, self.queue.put_nowait)
        self.store_trouble = Trouble("store")
        self.outbox_trouble = Trouble("outbox")
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.intake.start()
        self.tasks = [
            asyncio.create_task(self.process_loop(), name="mailgate-processor"),
            asyncio.create_task(self.outbox_loop(), name="mailgate-outbox"),
        ]

    async def process_loop(self) -> None:
        await self._enqueue_pending()
        while (intake_id := await self.queue.get()) is not None:
            await self._process_one(intake_id)

    async def _enqueue_pending(self) -> None:
        """Messages stored but not processed before (a crash, a busy database)."""
        while not self.stopping:
            try:
                ids = await asyncio.to_thread(pipeline.pending_ids, self.ctx)
            except StoreUnavailable as exc:
                self.store_trouble.failed(f"error={str(exc)!r}")
                await asyncio.sleep(STORE_RETRY_DELAY)
                continue
            for intake_id in ids:
                self.queue.put_nowait(intake_id)
            return

    async def _process_one(self, intake_id: int) -> None:
        try:
            await asyncio.to_thread(pipeline.process, self.ctx, intake_id)
        except StoreUnavailable as exc:
            # The message stays `received`; try again shortly (or at the next start).
            self.store_trouble.failed(f"intake_id={intake_id} error={str(exc)!r}")
            if not self.stopping:
                await asyncio.sleep(STORE_RETRY_DELAY)
                self.queue.put_nowait(intake_id)
            return
        except Exception:  # process() quarantines bad mail itself; this is a fault of ours
            log.exception("event=process_failed intake_id=%s", intake_id)
            return
        self.store_trouble.recovered()
        self.wake_outbox.set()

    async def outbox_loop(self) -> None:
        while True:
            # Read the flag before the round, so rows committed during it get one more.
            final = self.last_round
            await self._deliver()
            if final:
                return
            await _wait(self.wake_outbox, OUTBOX_INTERVAL)
            self.wake_outbox.clear()

    async def _deliver(self) -> None:
        try:
            await outbox.deliver_due(self.ctx, self.transport)
        except Exception as exc:  # a database or transport fault must not end the sender
            self.outbox_trouble.failed(f"error_type={type(exc).__name__} error={str(exc)!r}")
            return
        self.outbox_trouble.recovered()

    async def shutdown(self) -> None:
        """421 for newcomers, finish what is in hand, send what can be sent, stop."""
        log.info("event=stopping")
        self.stopping = True
        await self.intake.stop(INTAKE_GRACE)
        self.queue.put_nowait(None)
        processor, sender = self.tasks
        await _finish(processor, DRAIN_SECONDS)
        self.last_round = True
        self.wake_outbox.set()
        await _finish(sender, FLUSH_SECONDS)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def _finish(task: asyncio.Task[None], timeout: float) -> None:
    """Let a task end by itself within `timeout`; cancel it after that."""
    try:
        await asyncio.wait_for(task, timeout)
    except TimeoutError:
        log.warning("event=shutdown_timeout task=%s", task.get_name())


def describe(ctx: Context, listening: str) -> str:
    """The start-up line: where mail comes in, where it is kept and where it goes."""
    out = ctx.config.outbound
    target = f"file:{out.directory}" if out.transport == "file" else f"smtp:{out.host}:{out.port}"
    database = make_url(ctx.config.database.url).render_as_string(hide_password=True)
    return f"event=started listen={listening} database={database} outbound={target}"


async def serve(
    ctx: Context, transport: Transport, stop: asyncio.Event, ready: Callable[[], None] | None = None
) -> None:
    """Run until `stop` is set, then drain and return. Raises ListenError when the SMTP
    address cannot be bound; `ready` is called once mail can be taken."""
    daemon = Daemon(ctx, transport)
    await daemon.start()
    log.info(describe(ctx, daemon.intake.address))
    if ready is not None:
        ready()
    await stop.wait()
    await daemon.shutdown()
    await transport.close()
    log.info("event=stopped")


async def _serve_until_signalled(ctx: Context, transport: Transport) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(ctx, transport, stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    # aiosmtpd logs every command at INFO, in its own format; ours says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl" on every start, in its own format.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def run(config: Config) -> int:
    """`mailgate run`: serve in the foreground until SIGINT or SIGTERM; a sysexits status."""
    configure_logging()
    ctx = build_context(config)
    try:
        asyncio.run(_serve_until_signalled(ctx, build_transport(config)))
    except ListenError as exc:
        log.error("event=listen_failed error=%r", str(exc))
        return EX_UNAVAILABLE
    finally:
        ctx.store.dispose()
    return EX_OK
