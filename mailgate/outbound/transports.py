"""Delivery of composed messages: what a transport promises, how it fails, and the SMTP relay
(the file transport is in file_transport.py)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosmtplib

from mailgate.outbound.compose import is_sendable_address
from mailgate.store.oauth import OAuthError, Tokens, signed_in_async, xoauth2

log = logging.getLogger("mailgate.outbox")

SECURITY_MODES = ("none", "starttls", "ssl")
# Refusals that concern this message (its sender, a recipient, its content). Other 5xx
# answers (greeting, HELO, AUTH) say the relay or our settings are wrong: every message would
# fail the same way, so they are retried until someone fixes the relay.
_MESSAGE_REFUSALS = (
    aiosmtplib.SMTPSenderRefused,
    aiosmtplib.SMTPRecipientRefused,
    aiosmtplib.SMTPDataError,
)


class TemporaryFailure(Exception):
    """Delivery failed for now (4xx, connection, timeout); the outbox tries again later."""


class RelayUnavailable(TemporaryFailure):
    """The relay could not be reached or would not talk (connect, greeting, EHLO, TLS, AUTH);
    every message would fail the same way now, so the outbox stops the round."""


class Unanswered(TemporaryFailure):
    """The message went out but the relay never answered it (silence or a dropped line
    after DATA): it may have been taken. RFC 5321 leaves this case to the sender; the outbox
    sends it again, byte for byte, so the recipient's client shows one mail (one Message-ID)
    even if two arrive."""


class PermanentFailure(Exception):
    """The message will never be accepted as it is (5xx); retrying would not help."""


class Transport(Protocol):
    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name_hint: str
    ) -> str:
        """Deliver raw to recipients; a short description of where it went."""
        ...

    async def close(self) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_envelope(envelope_from: str, recipients: Sequence[str]) -> None:
    """Envelope addresses go into SMTP commands verbatim: only bare addresses pass, ASCII or
    with UTF-8 letters in the local part. An empty sender is the null reverse-path, which
    bounces and similar mail use."""
    if envelope_from and not is_sendable_address(envelope_from):
        raise PermanentFailure(f"unusable envelope sender {envelope_from!r}")
    if not recipients:
        raise PermanentFailure("no recipients")
    bad = [r for r in recipients if not is_sendable_address(r)]
    if bad:
        raise PermanentFailure(f"unusable recipient(s) {', '.join(map(repr, bad))}")


# Idle connections are closed after this long. Relays drop idle clients themselves, usually
# after a minute or more (Postfix: 300 s, but 10 s when it is overloaded); leaving first is
# politer, and a connection dropped anyway is noticed and replaced.
IDLE_SECONDS = 30.0
# A goodbye is not worth waiting long for: a relay that does not answer QUIT is left anyway.
QUIT_SECONDS = 5.0


class _NotTaken(Exception):
    """MAIL FROM got no proper answer (the line was closed, 421 or silence): nothing of the
    message reached the relay, so it may go again on another connection."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _NoAnswer(aiosmtplib.SMTPException):
    """DATA got no answer: the line dropped or the relay fell silent."""


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, telling a failure at MAIL FROM apart from one later in the
    transaction: after DATA has gone out, a retry could deliver the mail twice."""

    async def mail(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        try:
            return await super().mail(*args, **kwargs)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            raise _NotTaken(exc) from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            if exc.code == 421:  # the relay is closing the connection, not refusing the sender
                raise _NotTaken(exc) from exc
            raise

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        try:
            return await super().data(*args, **kwargs)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            raise _NoAnswer(f"{type(exc).__name__}: {exc}") from exc


@dataclass
class _Kept:
    client: _Client
    since: float  # the event loop's clock when it was last given back


@dataclass
class _Pool:
    """Connections of one event loop (asyncio objects cannot move between loops; the CLI runs
    a loop per command)."""

    loop: asyncio.AbstractEventLoop
    slots: asyncio.Semaphore  # one per connection, held while it is in use or being opened
    idle: list[_Kept] = field(default_factory=list)  # oldest first
    reaper: asyncio.Task[None] | None = None


class SmtpTransport:
    """Hands messages to an SMTP relay over at most `connections` connections at once, each
    kept open for the next message until it has been idle for `idle_seconds`."""

    def __init__(
        self,
        host: str,
        port: int,
        security: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        validate_certs: bool = True,
        local_hostname: str | None = None,
        connections: int = 4,
        idle_seconds: float = IDLE_SECONDS,
        oauth: Tokens | None = None,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}: {security!r}")
        if connections < 1:
            raise ValueError(f"connections must be at least 1: {connections!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.oauth = oauth  # AUTH XOAUTH2 as `username` with its tokens, instead of a password
        self.timeout, self.validate_certs = timeout, validate_certs
        self.local_hostname = local_hostname
        self.connections, self.idle_seconds = connections, idle_seconds
        self.relay_down = False  # logged when it goes down and when it comes back, not between
        self.closed = False  # after close(), nothing is kept open
        self._pool: _Pool | None = None

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name_hint: str
    ) -> str:
        """Deliver, and return the relay's answer to DATA (it usually names its queue id)."""
        check_envelope(envelope_from, recipients)
        pool = self._pool_here()
        async with pool.slots:
            refused, answer = await self._deliver(pool, envelope_from, list(recipients), raw)
        if refused:
            # The others have the mail; failing now would send it to them a second time.
            detail = "; ".join(f"{r}: {resp.code} {resp.message}" for r, resp in refused.items())
            log.warning("event=recipients_refused message=%s %s", name_hint, detail)
            return f"{answer} (refused: {detail})"
        return answer

    async def close(self) -> None:
        """Hang up every kept connection; later messages each get a connection of their own."""
        self.closed = True
        pool = self._pool
        if pool is None or pool.loop is not asyncio.get_running_loop():
            return
        if pool.reaper is not None:
            pool.reaper.cancel()  # it hangs up what is kept on its way out
            await asyncio.gather(pool.reaper, return_exceptions=True)
        await self._hang_up_idle(pool)

    def _pool_here(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop:
            # A finished loop hung up its connections as it ended (see _reap).
            self._pool = _Pool(loop, asyncio.Semaphore(self.connections))
        return self._pool

    async def _deliver(
        self, pool: _Pool, envelope_from: str, recipients: list[str], raw: bytes
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """One transaction on a kept connection if there is one, else on a new one. A kept
        connection the relay has let go fails at MAIL FROM, before anything of the message
        was taken: the message then goes once on a new connection, as if none had been kept.
        Runs with a slot held."""
        while pool.idle:
            kept = pool.idle.pop().client  # the most recently used: the likeliest to be alive
            if not kept.is_connected:
                kept.close()
                continue  # the relay closed it while it was idle, and we noticed
            try:
                return await self._transaction(pool, kept, envelope_from, recipients, raw)
            except _NotTaken:
                break
        client = await self._open()
        try:
            return await self._transaction(pool, client, envelope_from, recipients, raw)
        except _NotTaken as exc:
            raise _failure(exc.cause) from exc.cause

    async def _transaction(
        self,
        pool: _Pool,
        client: _Client,
        envelope_from: str,
        recipients: list[str],
        raw: bytes,
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """Send on `client`; it is kept for the next message only when its state is known."""
        error: Exception | None = None
        try:
            try:
                result = await client.sendmail(
                    envelope_from, recipients, raw, mail_options=_mail_options(raw, recipients)
                )
                clean = True
            except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
                # A refusal of this message: sendmail has sent RSET, but ignores its failure.
                error, clean = exc, await _reset(client)
            except (aiosmtplib.SMTPException, OSError) as exc:
                error, clean = exc, False
        except BaseException:
            # _NotTaken (closed already), cancelled mid-transaction, or a surprise: the
            # session's state is unknown, and there is no time for a polite QUIT.
            client.close()
            raise
        await self._give_back(pool, client, clean)
        if error is not None:
            raise _failure(error) from error
        return result

    async def _give_back(self, pool: _Pool, client: _Client, clean: bool) -> None:
        if not clean or self.closed or not client.is_connected:
            await _hang_up(client, self._quit_timeout())
            return
        pool.idle.append(_Kept(client, pool.loop.time()))
        if pool.reaper is None or pool.reaper.done():
            pool.reaper = pool.loop.create_task(self._reap(pool), name="mailgate-smtp-idle")

    async def _reap(self, pool: _Pool) -> None:
        """Hang up connections idle for idle_seconds; ends when none is kept. Cancelled, by
        close() or by asyncio.run ending its loop (the CLI never calls close()), it hangs up
        the rest, so no connection outlives its loop unannounced."""
        try:
            while pool.idle:
                await asyncio.sleep(pool.idle[0].since + self.idle_seconds - pool.loop.time())
                # One at a time, each with a slot held like a message's: a connection being
                # hung up still counts, so a new one never makes one too many.
                async with pool.slots:
                    if pool.idle and pool.idle[0].since + self.idle_seconds <= pool.loop.time():
                        await _hang_up(pool.idle.pop(0).client, self._quit_timeout())
        finally:
            await self._hang_up_idle(pool)

    async def _hang_up_idle(self, pool: _Pool) -> None:
        idle, pool.idle = pool.idle, []
        if idle:
            timeout = self._quit_timeout()
            await asyncio.gather(*(_hang_up(k.client, timeout) for k in idle))

    def _quit_timeout(self) -> float:
        return min(self.timeout, QUIT_SECONDS)

    async def _open(self) -> _Client:
        """Connect, greet, EHLO, STARTTLS and AUTH; a failure here is the relay's, not the
        message's."""
        client = self._client()
        try:
            await client.connect()
            if self.oauth is not None:
                sign_in = functools.partial(_xoauth2, client, self.username or "")
                await signed_in_async(self.oauth, sign_in, aiosmtplib.SMTPAuthenticationError)
        except (aiosmtplib.SMTPException, OSError, OAuthError) as exc:
            client.close()
            failure = RelayUnavailable(str(_failure(exc)))
            if not self.relay_down:
                log.warning(
                    "event=relay_unavailable relay=%s:%s error=%r",
                    self.host,
                    self.port,
                    str(failure),
                )
            self.relay_down = True
            raise failure from exc
        if self.relay_down:
            log.info("event=relay_recovered relay=%s:%s", self.host, self.port)
        self.relay_down = False
        return client

    def _client(self) -> _Client:
        return _Client(
            hostname=self.host,
            port=self.port,
            # With OAuth, _open signs in itself: aiosmtplib would try the password methods.
            username=None if self.oauth else self.username,
            password=self.password if self.username and not self.oauth else None,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
            use_tls=self.security == "ssl",
            # False, not None: None would upgrade opportunistically, which "none" must not do.
            start_tls=self.security == "starttls",
            validate_certs=self.validate_certs,
        )


async def _xoauth2(client: aiosmtplib.SMTP, username: str, token: str) -> None:
    """AUTH XOAUTH2, sent by hand: aiosmtplib learnt it only in later releases."""
    if client.last_ehlo_response is None:
        await client.ehlo()
    if "xoauth2" not in client.esmtp_extensions.get("auth", "").lower().split():
        raise aiosmtplib.SMTPException("the relay does not offer AUTH XOAUTH2")
    response = await client.execute_command(b"AUTH", b"XOAUTH2", xoauth2(username, token))
    if response.code == 334:
        # The relay's error details come as a challenge; an empty line ends the exchange.
        response = await client.execute_command(b"")
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET once more after a refusal: True when the session is certainly clean again."""
    if not client.is_connected:
        return False
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        return False
    return True


async def _hang_up(client: aiosmtplib.SMTP, timeout: float) -> None:
    """QUIT politely; a relay that drops the line instead changes nothing about the result."""
    if not client.is_connected:
        return
    try:
        await client.quit(timeout=timeout)
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()  # also when cancelled; after a QUIT it is closed already


def _mail_options(raw: bytes, recipients: list[str]) -> list[str]:
    """SMTPUTF8 where an address has UTF-8 in it (envelope or header: the body is 7-bit)."""
    return [] if raw.isascii() and all(map(str.isascii, recipients)) else ["SMTPUTF8"]


def _failure(exc: Exception) -> TemporaryFailure | PermanentFailure:
    """Sort a delivery error into "try again later" or "never"."""
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # Said before MAIL FROM: the relay lacks what the mail needs (SMTPUTF8). It will
        # not learn it by the next try; the log says which extension.
        return PermanentFailure(f"the relay cannot take this mail: {exc}")
    if isinstance(exc, _NoAnswer):
        return Unanswered(f"no answer to DATA, the relay may have taken the mail ({exc})")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if all(r.code >= 500 for r in exc.recipients):
            return PermanentFailure(f"all recipients refused: {detail}")
        return TemporaryFailure(f"recipients refused: {detail}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
        if exc.code >= 500 and isinstance(exc, _MESSAGE_REFUSALS):
            return PermanentFailure(text)
        return TemporaryFailure(text)
    return TemporaryFailure(f"{type(exc).__name__}: {exc}")
