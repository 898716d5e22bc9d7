"""One SMTP or LMTP session: aiosmtpd's protocol with mailgate's limits, DATA read in one
buffer, enhanced status codes, and a 421 when a limit or a shutdown ends it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Session, syntax

from mailgate.config import SmtpConfig
from mailgate.intake.data import READER_LIMIT, Body, Refusal, read_body
from mailgate.intake.gate import TOO_MANY, Gate
from mailgate.intake.replies import LINE_TOO_LONG, SHUTTING_DOWN, TOO_LARGE, with_enhanced_code

if TYPE_CHECKING:
    from mailgate.intake.smtp import IntakeHandler

log = logging.getLogger("mailgate.intake")

# The reply for each reason DATA reading refuses a message (intake/data.py).
_REFUSED = {Refusal.LINE_TOO_LONG: LINE_TOO_LONG, Refusal.TOO_LARGE: TOO_LARGE}


def peer_name(session: Session) -> str:
    peer = session.peer
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class Refuse(asyncio.Protocol):
    """Greets a connection that arrives during shutdown with 421 and hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(f"{SHUTTING_DOWN}\r\n".encode("ascii"))
        transport.close()


class SmtpSession(SMTP):
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
        # Between EHLO's hook and the last line of its reply: those lines go as they are.
        self.listing_extensions = False

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
        self.event_handler.on_reply(TOO_MANY)
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

    async def push(self, status: AnyStr) -> None:
        # RFC 2034: after EHLO, every 2xx, 4xx and 5xx reply but EHLO's own has a code.
        if isinstance(status, str) and self.session and self.session.extended_smtp:
            if self.listing_extensions:
                self.listing_extensions = status[3:4] == "-"
            else:
                status = with_enhanced_code(status)
        reply = status if isinstance(status, str) else status.decode("ascii", "replace")
        self.event_handler.on_reply(reply)
        await super().push(status)

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
            log.info("event=data_interrupted peer=%s", peer_name(self.session))
            self._writer.close()
            raise
        return (_REFUSED[body.refusal] if body.refusal else None), body.message

    def _expire(self, why: str, code: str = "4.4.2") -> None:
        # A closing transport (the client has gone, TLS included) takes no more writes.
        if self.transport is None or self.session is None or self.transport.is_closing():
            return
        log.info("event=session_closed peer=%s reason=%r", peer_name(self.session), why)
        self.event_handler.on_reply("421")
        self._writer.write(f"421 {code} {self.hostname} {why}, closing\r\n".encode("ascii"))
        self.transport.close()

    def shut(self) -> None:
        """The end of a shutdown's grace: 421 (RFC 5321 3.8), whatever the client is doing."""
        self._expire("shutting down", "4.3.2")


class LmtpSession(SmtpSession, LMTP):
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
