"""Errors the event loop reports over and over are logged once, then as a count."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

log = logging.getLogger("mailgate.daemon")

# How often a repeating error's count is logged while it goes on.
REPORT_SECONDS = 10.0


class RepeatedErrors:
    """An event loop exception handler: the first of a kind goes to asyncio's own handler
    (with its traceback), the repeats within `every` seconds are counted and logged as one
    line. Out of file descriptors, accept() fails many times a second: one line per failure
    fills the disk and hides everything else."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float = REPORT_SECONDS) -> None:
        self.loop = loop
        self.every = every
        self.counts: dict[str, int] = {}  # the kinds seen in this period, and their repeats

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        kind = _kind(context)
        if kind in self.counts:
            self.counts[kind] += 1
            return
        self.counts[kind] = 0
        loop.default_exception_handler(context)
        loop.call_later(self.every, self._report, kind)

    def _report(self, kind: str) -> None:
        repeats = self.counts.pop(kind, 0)
        if repeats:
            log.error(
                "event=error_repeated error=%r count=%s seconds=%g", kind, repeats, self.every
            )
            # Still going on, maybe: count on, and report again after the next period.
            self.counts[kind] = 0
            self.loop.call_later(self.every, self._report, kind)


def _kind(context: dict[str, Any]) -> str:
    """What makes two reports the same error: the message and the exception's type and
    errno (not its text, nor the socket, which name each connection)."""
    exc = context.get("exception")
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    parts = (context.get("message", ""), type(exc).__name__ if exc else "", name)
    return " ".join(p for p in parts if p)


def install(loop: asyncio.AbstractEventLoop, every: float = REPORT_SECONDS) -> None:
    """Make the loop log repeating errors once and then as a count."""
    loop.set_exception_handler(RepeatedErrors(loop, every))
