"""How the soak sends: SMTP clients and an IMAP client at a steady pace. Each mail has its
time; a client that falls behind goes on from where it is rather than catching up in a
burst, as a steady trickle of real mail would."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiosmtplib import SMTP, SMTPException
from corpus import SUPPORT
from soak_ledger import Ledger
from soak_mail import Mail, Stream

if TYPE_CHECKING:
    from tests.dovecot import ImapUser

# Mails an SMTP connection carries before it is closed and another opened: MTAs hold a
# connection for a few mails, so sessions keep coming and going, as their descriptors do.
PER_CONNECTION = 20
ERRORS_KEPT = 10

Source = Callable[[], Mail | None]


@dataclass
class Pace:
    until: float  # time.monotonic() when the load ends
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set early: the daemon died
    errors: list[str] = field(default_factory=list)  # the first few refusals, as said

    async def wait(self, due: float) -> bool:
        """Sleep until `due`; False instead once the load is over."""
        if due >= self.until or self.stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(0.0, due - time.monotonic()))
        return not self.stop.is_set()

    def note(self, channel: str, mail: Mail, error: BaseException) -> None:
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append(f"{channel} {mail.kind}: {type(error).__name__}: {error}")


async def steady(
    pace: Pace, first: float, period: float, send: Callable[[], Awaitable[None]]
) -> None:
    """Call `send` every `period` seconds from `first` until the load ends."""
    due = first
    while await pace.wait(due):
        due = max(due + period, time.monotonic())
        await send()


class Connection:
    """One MTA-like client: a connection for PER_CONNECTION mails, then a new one."""

    def __init__(self, port: int, pace: Pace, ledger: Ledger) -> None:
        self.port, self.pace, self.ledger = port, pace, ledger
        self.smtp: SMTP | None = None
        self.carried = 0

    async def send(self, mail: Mail) -> None:
        if self.smtp is None:
            self.smtp = SMTP(hostname="127.0.0.1", port=self.port, timeout=60)
            self.carried = 0
        delivered = await _deliver(self.smtp, mail, self.pace, self.ledger)
        self.carried += 1
        if not delivered or self.carried >= PER_CONNECTION:
            await self.close()

    async def close(self) -> None:
        if self.smtp is not None:
            await _hang_up(self.smtp)
            self.smtp = None


async def smtp_client(
    port: int, source: Source, first: float, period: float, pace: Pace, ledger: Ledger
) -> None:
    connection = Connection(port, pace, ledger)

    async def send() -> None:
        mail = source()
        if mail is not None:
            await connection.send(mail)

    try:
        await steady(pace, first, period, send)
    finally:
        await connection.close()


async def _deliver(smtp: SMTP, mail: Mail, pace: Pace, ledger: Ledger) -> bool:
    if mail.request is not None:
        ledger.add(mail.request)
    try:
        if not smtp.is_connected:
            await smtp.connect()
        await smtp.sendmail(mail.sender, [SUPPORT], mail.raw)
    except (SMTPException, OSError) as exc:  # a 4xx/5xx or no server: counted, the load goes on
        if mail.request is not None:
            ledger.withdraw(mail.request)
        ledger.refused[f"smtp {mail.kind}"] += 1
        pace.note("smtp", mail, exc)
        return False
    if mail.request is not None:
        mail.request.sent_at = time.time()
    ledger.sent[f"smtp {mail.kind}"] += 1
    return True


async def _hang_up(smtp: SMTP) -> None:
    with contextlib.suppress(SMTPException, OSError):
        if smtp.is_connected:
            await smtp.quit()
    smtp.close()


async def imap_client(
    user: ImapUser, stream: Stream, first: float, period: float, pace: Pace, ledger: Ledger
) -> None:
    """APPENDs to the inbox mailgate watches, as a mail client or a delivery over IMAP would
    (a login each: that is how such clients come)."""

    async def send() -> None:
        mail = stream.next()
        if mail.request is not None:
            ledger.add(mail.request)
        try:
            await asyncio.to_thread(user.append, mail.raw)
        except Exception as exc:  # Dovecot refused or is gone: counted, the load goes on
            if mail.request is not None:
                ledger.withdraw(mail.request)
            ledger.refused[f"imap {mail.kind}"] += 1
            pace.note("imap", mail, exc)
            return
        if mail.request is not None:
            mail.request.sent_at = time.time()
        ledger.sent[f"imap {mail.kind}"] += 1

    await steady(pace, first, period, send)


async def follow(ledger: Ledger, pace: Pace, every: float = 0.25) -> None:
    """Read the sink's file as it grows, so replies learn their tickets soon."""
    while await pace.wait(time.monotonic() + every):
        ledger.follow()
