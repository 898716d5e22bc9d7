"""SMTP intake: the aiosmtpd handler and the listening server; stores raw mail, nothing more."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import weakref
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgate import pipeline
from mailgate.context import Context
from mailgate.intake.spool import accept
from mailgate.store import StoreUnavailable

log = logging.getLogger("mailgate.intake")

SHUTTING_DOWN = "421 4.3.2 shutting down"
TRY_LATER = "451 4.3.0 cannot store message now, try again later"
TOO_LARGE = "552 5.3.4 message too large"


class ListenError(Exception):
    """The intake could not listen on its address (port taken, no permission, bad host)."""


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 hosts may come in brackets) as a host and a port number."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class IntakeHandler:
    """aiosmtpd hooks: refuse what we do not serve, store the rest, then tell the processor."""

    def __init__(self, ctx: Context, on_stored: Callable[[int], None]) -> None:
        self.ctx = ctx
        self.on_stored = on_stored
        self.shutting_down = False
        self.in_flight = 0  # messages being stored right now; shutdown waits for them
        self.idle = asyncio.Event()
        self.idle.set()

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # A session opened before shutdown may not start another transaction.
        if self.shutting_down:
            return SHUTTING_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        # Only our own addresses: anything else would make us an open relay.
        if not pipeline.is_served(self.ctx, address):
            log.info("event=rcpt_refused peer=%s rcpt=%s", _peer(session), address)
            return f"550 5.1.1 <{address}>: recipient not served here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.ctx.config.smtp.max_message_size:
            log.info("event=too_large peer=%s size=%s", _peer(session), len(raw))
            return TOO_LARGE
        self.in_flight += 1
        self.idle.clear()
        try:
            return await self._store(session, envelope, raw)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    async def _store(self, session: Session, envelope: Envelope, raw: bytes) -> str:
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        try:
            accepted = await asyncio.to_thread(
                accept,
                self.ctx.store,
                raw,
                "smtp",
                self.ctx.clock(),
                sender,
                list(envelope.rcpt_tos),
            )
        except StoreUnavailable as exc:
            log.warning("event=store_unavailable peer=%s error=%r", _peer(session), str(exc))
            return TRY_LATER
        except Exception:  # an unexpected fault must not bounce mail: the MTA retries a 4xx
            log.exception("event=store_failed peer=%s", _peer(session))
            return TRY_LATER
        log.info(
            "event=stored intake_id=%s peer=%s from=%s size=%s duplicate=%s",
            accepted.intake_id,
            _peer(session),
            sender,
            len(raw),
            accepted.duplicate,
        )
        self.on_stored(accepted.intake_id)
        return f"250 2.0.0 Ok: stored as {accepted.intake_id}"


def _peer(session: Session) -> str:
    peer = session.peer
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class _Refuse(asyncio.Protocol):
    """Greets a connection that arrives during shutdown with 421 and hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(f"{SHUTTING_DOWN}\r\n".encode("ascii"))
        transport.close()


class SmtpIntake:
    """The SMTP listener on the caller's event loop, so hooks share it with the processor."""

    def __init__(self, ctx: Context, on_stored: Callable[[int], None]) -> None:
        self.ctx = ctx
        self.handler = IntakeHandler(ctx, on_stored)
        self.hostname = ctx.config.smtp.hostname or socket.getfqdn()
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @property
    def address(self) -> str:
        """Where it listens, as HOST:PORT (the real port when the configured one was 0);
        comma-separated when the host name stood for several addresses."""
        assert self._server is not None
        names = [sock.getsockname()[:2] for sock in self._server.sockets]
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in names)

    async def start(self) -> None:
        listen = self.ctx.config.smtp.listen
        host, port = split_listen(listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._protocol, host, port)
        except OSError as exc:
            raise ListenError(f"cannot listen on {listen}: {_reason(exc)}") from None

    def _protocol(self) -> asyncio.Protocol:
        if self.handler.shutting_down:
            return _Refuse()
        session = SMTP(
            self.handler,
            data_size_limit=self.ctx.config.smtp.max_message_size,
            decode_data=False,
            hostname=self.hostname,
            ident="mailgate",
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    def begin_shutdown(self) -> None:
        """From now on new sessions and new transactions get 421; stored mail is kept."""
        self.handler.shutting_down = True

    async def stop(self, grace: float) -> None:
        """Wait up to `grace` seconds for messages being stored, then close everything."""
        self.begin_shutdown()
        try:
            await asyncio.wait_for(self.handler.idle.wait(), grace)
        except TimeoutError:
            log.warning("event=intake_stop_timeout in_flight=%s", self.handler.in_flight)
        if self._server is not None:
            self._server.close()
        # Before wait_closed: from Python 3.12 on it waits for every open session to end.
        for session in list(self._sessions):
            _close(session)
        if self._server is not None:
            await self._server.wait_closed()


def _reason(exc: OSError) -> str:
    # asyncio wraps bind errors in a long sentence; the errno says it in three words.
    if exc.errno and exc.errno > 0 and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)
    return str(exc)


def _close(session: Any) -> None:
    transport = getattr(session, "transport", None)
    if transport is not None:
        transport.close()
