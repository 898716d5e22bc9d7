"""Events that repeat are logged once, then as one line with their count every few seconds."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

log = logging.getLogger("mailgate.daemon")

# How often a repeating event's count is logged while it goes on.
REPORT_SECONDS = 10.0


class Repeats:
    """Counts events by kind on the running event loop: `first` says whether the caller
    should log this one; the rest are counted and logged as one line every `every`
    seconds while they go on. A flood of the same event then costs a line per period,
    not a line per event that fills the disk and hides everything else."""

    def __init__(
        self,
        every: float = REPORT_SECONDS,
        logger: logging.Logger = log,
        level: int = logging.ERROR,
    ) -> None:
        self.every, self.logger, self.level = every, logger, level
        self.counts: dict[str, int] = {}  # the kinds seen in this period, and their repeats

    def first(self, kind: str) -> bool:
        if kind in self.counts:
            self.counts[kind] += 1
            return False
        self.counts[kind] = 0
        asyncio.get_running_loop().call_later(self.every, self._report, kind)
        return True

    def _report(self, kind: str) -> None:
        repeats = self.counts.pop(kind, 0)
        if repeats:
            self.logger.log(
                self.level,
                "event=repeated what=%r count=%s seconds=%g",
                kind,
                repeats,
                self.every,
            )
            # Still going on, maybe: count on, and report again after the next period.
            self.counts[kind] = 0
            asyncio.get_running_loop().call_later(self.every, self._report, kind)


def install(loop: asyncio.AbstractEventLoop, repeats: Repeats) -> None:
    """Make the loop pass the first error of a kind to asyncio's own handler (with its
    traceback) and count the repeats. Out of file descriptors, accept() fails many times a
    second."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if repeats.first(_kind(context)):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def _kind(context: dict[str, Any]) -> str:
    """What makes two reports the same error: the message and the exception's type and
    errno (not its text, nor the socket, which name each connection)."""
    exc = context.get("exception")
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    parts = (context.get("message", ""), type(exc).__name__ if exc else "", name)
    return " ".join(p for p in parts if p)
