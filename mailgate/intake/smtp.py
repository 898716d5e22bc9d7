"""SMTP and LMTP intake: the aiosmtpd handler and the listeners; stores raw mail, nothing more."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from mailgate.config import SmtpConfig
from mailgate.context import Context
from mailgate.intake.activity import Activity
from mailgate.intake.data import READER_LIMIT, Body, Refusal, read_body
from mailgate.intake.gate import TOO_MANY, Gate
from mailgate.intake.spool import GroupCommit, Incoming
from mailgate.store import StoreUnavailable

log = logging.getLogger("mailgate.intake")

SHUTTING_DOWN = "421 4.3.2 shutting down"
TRY_LATER = "451 4.3.0 cannot store message now, try again later"
TOO_LARGE = "552 5.3.4 message too large"
TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
LINE_TOO_LONG = "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)"
# The reply for each reason DATA reading refuses a message (intake/data.py).
_REFUSED = {Refusal.LINE_TOO_LONG: LINE_TOO_LONG, Refusal.TOO_LARGE: TOO_LARGE}
LMTP_SOCKET_MODE = 0o660  # the MTA reaches it through the group, nobody else at all


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
        self.committer = GroupCommit(ctx.store)
        self.shutting_down = False
        # What shutdown waits for (up to [smtp] shutdown_grace_seconds): sessions between
        # 354 and the reply to their message, and messages being stored (those go on after
        # their client has hung up).
        self.receiving = Activity()
        self.storing = Activity()
        self._storing: set[asyncio.Task[str]] = set()  # strong references while they run

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
        # RFC 5321 4.5.3.1.10: 452 tells the client to send the rest in another transaction.
        if len(envelope.rcpt_tos) >= self.ctx.config.smtp.max_recipients:
            return TOO_MANY_RECIPIENTS
        # Only our own addresses (the comment address among them): anything else would
        # make us an open relay.
        if not self.ctx.config.smtp.serves(address):
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
        # Counted before the task starts, so a shutdown in between still waits for it.
        self.storing.enter()
        # Shielded: when the client hangs up or the session times out while the message is
        # being stored, storing still finishes and the processor still hears of it.
        task = asyncio.ensure_future(self._store_counted(session, envelope, raw))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        return await asyncio.shield(task)

    async def _store_counted(self, session: Session, envelope: Envelope, raw: bytes) -> str:
        try:
            return await self._store(session, envelope, raw)
        finally:
            self.storing.leave()

    async def _store(self, session: Session, envelope: Envelope, raw: bytes) -> str:
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        try:
            accepted = await self.committer.accept(
                Incoming(raw, "smtp", self.ctx.clock(), sender, list(envelope.rcpt_tos))
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


class _Session(SMTP):
    """aiosmtpd's SMTP with mailgate's limits: line length, session time and idle time.

    aiosmtpd's own `timeout` counts from the last command, so a large DATA over a slow link
    would be cut off mid-transfer, and it hangs up without a word. Here idle means no byte
    from the client, and both limits end with a 421 as RFC 5321 4.2.2 suggests."""

    def __init__(
        self, handler: IntakeHandler, cfg: SmtpConfig, gate: Gate | None = None, **kwargs: Any
    ) -> None:
        # SMTP.__init__ sizes its stream reader by line_length_limit. DATA is read many lines
        # at a time (data.py), from a reader that holds many; commands have limits of their
        # own. The DATA line limit is set after: with CRLF and the transparent dot (RFC 5321
        # 4.5.2) counted into the line, as aiosmtpd counts.
        self.line_length_limit = READER_LIMIT
        # Its own timer, counted from the last command, is only a backstop: set longer than
        # the whole session, ours below always fire first.
        backstop = cfg.session_timeout + cfg.idle_timeout
        super().__init__(handler, timeout=backstop, **kwargs)
        self.line_length_limit = cfg.max_line_length + 3
        # smtp_DATA below hands the handler bytes as they came, never decoded text.
        assert not self._decode_data, "mailgate stores raw bytes: decode_data must be False"
        self._limits = cfg
        self._session_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_byte = 0.0  # the event loop's clock when the client last sent something
        self._gate = gate  # None on the LMTP socket: only the local MTA reaches it
        self._client = ""  # the client's address, once the gate has let it in
        self._turned_away = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        started = self._session_timer is not None  # STARTTLS calls this a second time
        if not started and not self._let_in(transport):
            return
        super().connection_made(transport)
        if not started:
            self._session_timer = self.loop.call_later(
                self._limits.session_timeout, self._expire, "session time limit reached"
            )
            self._touch()

    def _let_in(self, transport: asyncio.BaseTransport) -> bool:
        """Count the session in at the gate, or answer 421 and hang up before any work."""
        if self._gate is None:
            return True
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if self._gate.admit(client):
            self._client = client
            return True
        self._turned_away = True
        if self._gate.refusals.first("connection refused: too many sessions"):
            log.warning("event=connection_refused peer=%s reason=too_many_sessions", client)
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(f"{TOO_MANY}\r\n".encode("ascii"))
        transport.close()
        return False

    def data_received(self, data: bytes) -> None:
        if self._turned_away:
            return
        self._touch()
        super().data_received(data)

    def eof_received(self) -> bool | None:
        return False if self._turned_away else super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._turned_away:
            return
        for timer in (self._session_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        if self._gate is not None:
            self._gate.leave(self._client)
        super().connection_lost(exc)

    def _touch(self) -> None:
        self._last_byte = self.loop.time()
        self.rearm()

    def rearm(self) -> None:
        """(Re)start the idle timer for the idle limit of now; shorter under pressure."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        limit = self._gate.idle_limit() if self._gate else self._limits.idle_timeout
        left = max(self._last_byte + limit - self.loop.time(), 0.0)
        self._idle_timer = self.loop.call_later(left, self._idle_over)

    def _idle_over(self) -> None:
        limit = self._gate.idle_limit() if self._gate else self._limits.idle_timeout
        # The loop may run a timer up to its clock resolution early: a millisecond's grace.
        if self.loop.time() - self._last_byte < limit - 0.001:
            self.rearm()  # the pressure has eased since the timer was set: a longer wait
        else:
            self._expire("idle time limit reached")

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        # aiosmtpd's own DATA keeps one bytearray per line and joins them at the end: for a
        # 34 MB message some 450,000 objects and then a second full copy. Here the message
        # grows in one buffer, so taking it costs about its own size.
        if not await self._data_may_start(arg):
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # A shutdown lets the message finish, within its grace, up to the reply.
        self.event_handler.receiving.enter()
        try:
            reply, message = await self._read_message()
            assert self.envelope is not None
            if reply is None:
                # The buffer itself, not a bytes copy (that would double the peak): hashlib,
                # the digest and both database drivers take any bytes-like object, and
                # nothing changes the buffer once it is handed over.
                self.envelope.original_content = self.envelope.content = message
                status = await self._call_handler_hook("DATA")
                reply = "250 OK" if status is MISSING else status
            self._set_post_data_state()
            await self.push(reply)
        finally:
            self.event_handler.receiving.leave()

    async def _data_may_start(self, arg: str | None) -> bool:
        """aiosmtpd's checks before DATA, in its order and with its replies."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return False
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return False
        if arg:
            await self.push("501 Syntax: DATA")
            return False
        return True

    async def _read_message(self) -> tuple[str | None, bytearray]:
        """The message up to the lone dot, or the reply that refuses it (sent once the
        whole message is read, RFC 5321 4.2.5)."""
        assert self.session is not None
        limit = self.data_size_limit or 0  # None or 0: no limit, as aiosmtpd reads it
        body = Body(self.line_length_limit, limit)
        try:
            await read_body(self._reader, body)
        except asyncio.CancelledError:
            # The client hung up (or the session was closed) in the middle of DATA.
            log.info("event=data_interrupted peer=%s", _peer(self.session))
            self._writer.close()
            raise
        return (_REFUSED[body.refusal] if body.refusal else None), body.message

    def _expire(self, why: str, code: str = "4.4.2") -> None:
        # A closing transport (the client has gone, TLS included) takes no more writes.
        if self.transport is None or self.session is None or self.transport.is_closing():
            return
        log.info("event=session_closed peer=%s reason=%r", _peer(self.session), why)
        self._writer.write(f"421 {code} {self.hostname} {why}, closing\r\n".encode("ascii"))
        self.transport.close()

    def shut(self) -> None:
        """The end of a shutdown's grace: 421 (RFC 5321 3.8), whatever the client is doing."""
        self._expire("shutting down", "4.3.2")


class _LmtpSession(_Session, LMTP):
    """LMTP answers DATA once per accepted recipient (RFC 2033 4.2). mailgate stores one
    copy for all of them, so each gets the same answer, whoever wrote it (the handler, or
    smtp_DATA itself for an over-long line or too much data)."""

    def __init__(self, handler: IntakeHandler, cfg: SmtpConfig, **kwargs: Any) -> None:
        super().__init__(handler, cfg, **kwargs)
        self._data_recipients = 0
        self._answers_each = 1

    async def smtp_DATA(self, arg: str) -> None:
        self._data_recipients = len(self.envelope.rcpt_tos) if self.envelope else 0
        try:
            await super().smtp_DATA(arg)
        finally:
            self._data_recipients, self._answers_each = 0, 1

    async def push(self, status: AnyStr) -> None:
        for _ in range(self._answers_each):
            await super().push(status)
        # Replies before 354 answer the DATA command itself; those after it, the message.
        if status[:3] in ("354", b"354"):
            self._answers_each = max(self._data_recipients, 1)


class SmtpIntake:
    """The SMTP listener, and the LMTP socket when configured, on the caller's event loop, so
    hooks share it with the processor."""

    def __init__(self, ctx: Context, on_stored: Callable[[int], None]) -> None:
        self.ctx = ctx
        self.handler = IntakeHandler(ctx, on_stored)
        self.hostname = ctx.config.smtp.hostname or socket.getfqdn()
        self._server: asyncio.Server | None = None
        self._lmtp: asyncio.Server | None = None
        self._tls: ssl.SSLContext | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.gate = Gate(ctx.config.smtp)
        self.gate.on_pressure = self._cut_idle_sooner

    @property
    def address(self) -> str:
        """Where it listens, as HOST:PORT (the real port when the configured one was 0);
        comma-separated when the host name stood for several addresses."""
        assert self._server is not None
        names = [sock.getsockname()[:2] for sock in self._server.sockets]
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in names)

    async def start(self) -> None:
        """Listen for SMTP (and LMTP); ListenError names what could not be set up."""
        cfg = self.ctx.config.smtp
        self._tls = _tls_context(cfg)
        host, port = split_listen(cfg.listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: self._protocol(_Session), host, port)
        except OSError as exc:
            raise ListenError(f"cannot listen on {cfg.listen}: {_reason(exc)}") from None
        if cfg.lmtp_socket:
            try:
                self._lmtp = await self._start_lmtp(cfg.lmtp_socket)
            except ListenError:
                self._server.close()
                raise
            log.info("event=lmtp_listening socket=%s", cfg.lmtp_socket)

    async def _start_lmtp(self, path: str) -> asyncio.Server:
        socket_path = Path(path)
        # A socket left by a crashed run would make bind fail; anything else is not ours.
        if socket_path.is_socket():
            socket_path.unlink()
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_unix_server(
                lambda: self._protocol(_LmtpSession), str(socket_path)
            )
            socket_path.chmod(LMTP_SOCKET_MODE)
        except OSError as exc:
            raise ListenError(f"cannot listen on {path}: {_reason(exc)}") from None
        return server

    def _protocol(self, kind: type[_Session]) -> asyncio.Protocol:
        if self.handler.shutting_down:
            return _Refuse()
        cfg = self.ctx.config.smtp
        lmtp = kind is _LmtpSession
        session = kind(
            self.handler,
            cfg,
            # The LMTP socket is local: only the MTA reaches it, and it must always get in.
            gate=None if lmtp else self.gate,
            data_size_limit=cfg.max_message_size,
            decode_data=False,
            hostname=self.hostname,
            ident="mailgate",
            # The LMTP socket is local; TLS on it would protect nothing.
            tls_context=None if lmtp else self._tls,
            require_starttls=cfg.require_tls and not lmtp,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    def _cut_idle_sooner(self) -> None:
        """Under pressure, sessions idle already get the shorter idle limit too."""
        for session in list(self._sessions):
            if isinstance(session, _Session) and session.transport is not None:
                session.rearm()

    def begin_shutdown(self) -> None:
        """From now on new sessions and new transactions get 421; stored mail is kept."""
        self.handler.shutting_down = True

    async def stop(self, grace: float) -> None:
        """Wait up to `grace` seconds for messages being received or stored; newcomers get
        421 meanwhile. Then every session still open gets 421 and is closed."""
        self.begin_shutdown()
        handler = self.handler
        try:
            async with asyncio.timeout(grace):
                while not (handler.receiving.quiet.is_set() and handler.storing.quiet.is_set()):
                    await handler.receiving.quiet.wait()
                    await handler.storing.quiet.wait()
        except TimeoutError:
            log.warning(
                "event=intake_stop_timeout receiving=%s storing=%s",
                handler.receiving.count,
                handler.storing.count,
            )
        servers = [s for s in (self._server, self._lmtp) if s is not None]
        for server in servers:
            server.close()
        # Before wait_closed: from Python 3.12 on it waits for every open session to end.
        for session in list(self._sessions):
            if isinstance(session, _Session):
                session.shut()
        for server in servers:
            await server.wait_closed()
        if self._lmtp is not None:
            Path(self.ctx.config.smtp.lmtp_socket).unlink(missing_ok=True)


def _tls_context(cfg: SmtpConfig) -> ssl.SSLContext | None:
    """The server side of STARTTLS, or None when no certificate is configured."""
    if not cfg.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ListenError(f"cannot load TLS certificate {cfg.tls_cert_file}: {exc}") from None
    return context


def _reason(exc: OSError) -> str:
    # asyncio wraps bind errors in a long sentence; the errno says it in three words.
    if exc.errno and exc.errno > 0 and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)
    return str(exc)
