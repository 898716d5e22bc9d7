"""The composition root: `mailgate run` and `mailgate ingest` get their parts here, made
from one Config; the daemon, its processes and the commands are put together here and
nowhere below."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Callable, Sequence

from sqlalchemy.engine import make_url

from mailgate.config import Config
from mailgate.intake import repeats
from mailgate.intake.smtp import ListenError
from mailgate.outbound.context import Context
from mailgate.outbound.transports import Transport
from mailgate.service.arenas import limit_malloc_arenas
from mailgate.service.daemon import Daemon, listening_status
from mailgate.service.hosted import Host, HostedPart
from mailgate.service.instance import AlreadyRunning, hold
from mailgate.service.logs import configure_logging
from mailgate.service.parts import build_context, build_renderer, build_transport, outbound_target
from mailgate.service.sdnotify import Notifier

__all__ = ["build_context", "build_renderer", "build_transport", "run", "serve"]

log = logging.getLogger("mailgate.daemon")

EX_OK, EX_UNAVAILABLE, EX_TEMPFAIL = 0, 69, 75  # sysexits(3)
# With no hard limit on open files, the soft one is raised this far (the kernel's default
# ceiling, nr_open, is 1,048,576).
OPEN_FILES_CEILING = 65536


def describe(ctx: Context, listening: str, http: str = "") -> str:
    """The start-up line: where mail comes in, where it is kept and where it goes."""
    database = make_url(ctx.config.database.url).render_as_string(hide_password=True)
    return (
        f"event=started listen={listening} database={database} "
        f"outbound={outbound_target(ctx.config)} http={http or '-'}"
    )


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
    parts: Sequence[HostedPart] = (),
) -> None:
    """Run until `stop` is set, then drain and return; reload whenever `hangup` is set.
    Raises ListenError when the SMTP address cannot be bound; `ready` is called once mail
    can be taken. `parts`: what the command line adds (the web desk), started after the
    daemon and stopped before it."""
    # Out of file descriptors, accept() fails many times a second: logged once, then counted.
    repeats.install(asyncio.get_running_loop(), repeats.Repeats())
    daemon = Daemon(ctx, transport, notifier or Notifier({}))
    await daemon.start()
    loop = asyncio.get_running_loop()
    # Parts may queue mail from threads of their own (the web desk's page handlers).
    host = Host(lambda: daemon.ctx, lambda: loop.call_soon_threadsafe(daemon.wake_outbox.set))
    for part in parts:
        await part.start(host)
    log.info(describe(ctx, daemon.intake.address, http_address(daemon.http)))
    if hangup is not None:
        daemon._helper(daemon.reload_loop(hangup), "reload")
    daemon.notifier.ready(listening_status(daemon))
    if ready is not None:
        ready()
    await stop.wait()
    for part in parts:
        await part.stop()
    await daemon.shutdown()
    await daemon.transport.close()
    log.info("event=stopped")


async def _serve_until_signalled(
    ctx: Context, transport: Transport, parts: Sequence[HostedPart]
) -> None:
    stop, hangup = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    handlers = {signal.SIGINT: stop.set, signal.SIGTERM: stop.set, signal.SIGHUP: hangup.set}
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        await serve(ctx, transport, stop, hangup=hangup, notifier=Notifier(), parts=parts)
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


def run(config: Config, parts: Sequence[HostedPart] = ()) -> int:
    """`mailgate run`: serve in the foreground until SIGINT or SIGTERM; a sysexits status."""
    configure_logging(config.logging)
    raise_open_files_limit()
    limit_malloc_arenas()
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
        asyncio.run(_serve_until_signalled(ctx, build_transport(config), parts))
    except ListenError as exc:
        log.error("event=listen_failed error=%r", str(exc))
        return EX_UNAVAILABLE
    finally:
        ctx.store.dispose()
        if instance is not None:
            instance.release()
    return EX_OK
