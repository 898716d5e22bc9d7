"""Delivery of composed messages: to an SMTP relay, or as .eml files into a folder."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiosmtplib

from mailgate.compose import is_plain_address

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
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class TemporaryFailure(Exception):
    """Delivery failed for now (4xx, connection, timeout); the outbox tries again later."""


class RelayUnavailable(TemporaryFailure):
    """The relay could not be reached or would not talk (connect, greeting, EHLO, TLS, AUTH);
    every message would fail the same way now, so the outbox stops the round."""


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
    """Envelope addresses go into SMTP commands verbatim: only bare ASCII addresses pass.
    An empty sender is the null reverse-path, which bounces and similar mail use."""
    if envelope_from and not is_plain_address(envelope_from):
        raise PermanentFailure(f"unusable envelope sender {envelope_from!r}")
    if not recipients:
        raise PermanentFailure("no recipients")
    bad = [r for r in recipients if not is_plain_address(r)]
    if bad:
        raise PermanentFailure(f"unusable recipient(s) {', '.join(map(repr, bad))}")


class FileTransport:
    """Writes each message as one .eml file; the embedded default, and handy in tests."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = utc_now) -> None:
        self.directory = Path(directory)
        self.clock = clock

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name_hint: str
    ) -> str:
        stem = f"{self.clock().astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{_safe_name(name_hint)}"
        try:
            path = await asyncio.to_thread(self._write, raw, stem)
        except OSError as exc:  # disk full, permissions: may well be fixed by the next try
            raise TemporaryFailure(f"cannot write to {self.directory}: {exc}") from exc
        return str(path)

    async def close(self) -> None:
        return None

    def _write(self, raw: bytes, stem: str) -> Path:
        """Readers never see half a file: write a hidden temp file, sync, then publish."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            path = _publish(Path(tmp), self.directory, stem)
        finally:
            Path(tmp).unlink(missing_ok=True)
        _fsync_dir(self.directory)
        return path


def _safe_name(hint: str) -> str:
    name = _UNSAFE_NAME.sub("_", hint).strip("._")[:80]
    return name or "message"


def _publish(tmp: Path, directory: Path, stem: str) -> Path:
    """Link the finished file under its final name. Unlike rename, a link never replaces an
    existing file, so two mails with the same name both survive."""
    for n in range(1000):
        path = directory / (f"{stem}.eml" if n == 0 else f"{stem}-{n}.eml")
        try:
            os.link(tmp, path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free file name for {stem} in {directory}")


def _fsync_dir(directory: Path) -> None:
    """The new directory entry itself must survive a crash, not just the file's data."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SmtpTransport:
    """Hands messages to an SMTP relay, one connection per message."""

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
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}: {security!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout, self.validate_certs = timeout, validate_certs
        self.local_hostname = local_hostname
        self.relay_down = False  # logged when it goes down and when it comes back, not between

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name_hint: str
    ) -> str:
        """Deliver, and return the relay's answer to DATA (it usually names its queue id)."""
        check_envelope(envelope_from, recipients)
        client = self._client()
        try:
            await self._connect(client)
            refused, answer = await client.sendmail(envelope_from, list(recipients), raw)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _failure(exc) from exc
        finally:
            await _hang_up(client)
        if refused:
            # The others have the mail; failing now would send it to them a second time.
            detail = "; ".join(f"{r}: {resp.code} {resp.message}" for r, resp in refused.items())
            log.warning("event=recipients_refused message=%s %s", name_hint, detail)
            return f"{answer} (refused: {detail})"
        return answer

    async def close(self) -> None:
        return None  # nothing is kept open between messages yet

    async def _connect(self, client: aiosmtplib.SMTP) -> None:
        """Connect, greet, EHLO, STARTTLS and AUTH; a failure here is the relay's, not the
        message's."""
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
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

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password if self.username else None,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
            use_tls=self.security == "ssl",
            # False, not None: None would upgrade opportunistically, which "none" must not do.
            start_tls=self.security == "starttls",
            validate_certs=self.validate_certs,
        )


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; a relay that drops the line instead changes nothing about the result."""
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _failure(exc: Exception) -> TemporaryFailure | PermanentFailure:
    """Sort a delivery error into "try again later" or "never"."""
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
