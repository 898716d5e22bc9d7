"""The web desk served by uvicorn on the daemon's event loop (`[web] listen`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from mailgate.config import Config
from mailgate.service.hosted import Host
from mailgate.web.app import build_app

log = logging.getLogger("mailgate.web")
STOP_SECONDS = 5.0  # requests in flight at shutdown may finish this long


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The daemon owns SIGTERM, SIGINT and SIGHUP: it stops the web desk with the rest.
        yield


class WebDesk:
    """A part of the daemon (mailgate.service.hosted): started with it, stopped first."""

    def __init__(self, listen: str) -> None:
        self.listen = listen
        self.server: _Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.address = ""

    async def start(self, host: Host) -> None:
        try:
            # Bound here, not by uvicorn, which would exit the process on a port in use:
            # like /metrics, a web desk that cannot listen is logged and mail goes on.
            sock = _listening(self.listen)
        except OSError as exc:
            log.error("event=web_listen_failed listen=%s error=%r", self.listen, str(exc))
            return
        self.address = "{}:{}".format(*sock.getsockname()[:2])
        config = uvicorn.Config(
            build_app(host),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(STOP_SECONDS),
        )
        self.server = _Server(config)
        self.task = asyncio.create_task(self.server.serve([sock]), name="mailgate-web")
        log.info("event=web_listening listen=%s", self.address)

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self.task, STOP_SECONDS * 2)
        except TimeoutError:
            self.task.cancel()


def _listening(listen: str) -> socket.socket:
    """A listening TCP socket made with its protocol named: asyncio sets TCP_NODELAY only on
    connections of such a socket, and without it every answer in two writes (header, body)
    waited 40 ms for the client's delayed acknowledgement."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def web_parts(config: Config) -> list[WebDesk]:
    """The web desk when `[web] listen` is set; nothing otherwise."""
    return [WebDesk(config.web.listen)] if config.web.listen else []
