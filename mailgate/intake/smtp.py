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

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgate.config import SmtpConfig
from mailgate.intake.activity import Activity
from mailgate.intake.gate import Gate
from mailgate.intake.replies import (
    EXTENSIONS,
    NOT_UTF8,
    RECIPIENT_OK,
    SENDER_OK,
    SHUTTING_DOWN,
    TOO_LARGE,
    TOO_MANY_RECIPIENTS,
    TRY_LATER,
)
from mailgate.intake.session import LmtpSession, Refuse, SmtpSession, peer_name
from mailgate.outbound.context import Context
from mailgate.store.database import StoreUnavailable
from mailgate.store.spool import GroupCommit, Incoming

log = logging.getLogger("mailgate.intake")

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
        # Every reply line sent to a client (the daemon counts the refusals among them).
        self.on_reply: Callable[[str], None] = lambda reply: None

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd's extensions, ours before its last line. (Its own EHLO would note the
        client's name; with this hook, that is ours to do.)"""
        session.host_name = hostname
        if isinstance(server, SmtpSession):
            server.listing_extensions = True
        return [*responses[:-1], *EXTENSIONS, responses[-1]]

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
        if not _utf8(address):
            return NOT_UTF8
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return SENDER_OK

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
        if not _utf8(address):
            return NOT_UTF8
        # Only our own addresses (the comment address among them): anything else would
        # make us an open relay.
        if not self.ctx.config.smtp.serves(address):
            log.info("event=rcpt_refused peer=%s rcpt=%s", peer_name(session), address)
            return f"550 5.1.1 <{address}>: recipient not served here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self.ctx.config.smtp.max_message_size:
            log.info("event=too_large peer=%s size=%s", peer_name(session), len(raw))
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
            log.warning("event=store_unavailable peer=%s error=%r", peer_name(session), str(exc))
            return TRY_LATER
        except Exception:  # an unexpected fault must not bounce mail: the MTA retries a 4xx
            log.exception("event=store_failed peer=%s", peer_name(session))
            return TRY_LATER
        log.info(
            "event=stored intake_id=%s peer=%s from=%s size=%s duplicate=%s",
            accepted.intake_id,
            peer_name(session),
            sender,
            len(raw),
            accepted.duplicate,
        )
        self.on_stored(accepted.intake_id)
        return f"250 2.0.0 Ok: stored as {accepted.intake_id}"


def _utf8(address: str) -> bool:
    """With SMTPUTF8 aiosmtpd decodes commands as UTF-8, keeping bad bytes as surrogates;
    an address with those could be neither stored nor answered."""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
            self._server = await loop.create_server(lambda: self._protocol(SmtpSession), host, port)
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
                lambda: self._protocol(LmtpSession), str(socket_path)
            )
            socket_path.chmod(LMTP_SOCKET_MODE)
        except OSError as exc:
            raise ListenError(f"cannot listen on {path}: {_reason(exc)}") from None
        return server

    def _protocol(self, kind: type[SmtpSession]) -> asyncio.Protocol:
        if self.handler.shutting_down:
            return Refuse()
        cfg = self.ctx.config.smtp
        lmtp = kind is LmtpSession
        session = kind(
            self.handler,
            cfg,
            # The LMTP socket is local: only the MTA reaches it, and it must always get in.
            gate=None if lmtp else self.gate,
            data_size_limit=cfg.max_message_size,
            decode_data=False,
            hostname=self.hostname,
            ident="mailgate",
            # UTF-8 in addresses and header fields (RFC 6531); stored as sent.
            enable_SMTPUTF8=True,
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
            if isinstance(session, SmtpSession) and session.transport is not None:
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
            if isinstance(session, SmtpSession):
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
