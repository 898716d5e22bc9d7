"""The door of the SMTP listener: how many sessions may be open, in all and per client."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from mailgate.config import SmtpConfig
from mailgate.intake.repeats import Repeats

TOO_MANY = "421 4.7.0 Too many connections, try again later"


class Gate:
    """Counts open sessions by client address; says who may come in and how long an idle
    session may stay. One per listener, passed to each session it lets in."""

    def __init__(self, cfg: SmtpConfig) -> None:
        self.cfg = cfg
        self.open = 0
        self.by_client: Counter[str] = Counter()
        # Called when the listener comes under pressure, so idle sessions are cut sooner.
        self.on_pressure: Callable[[], None] = lambda: None
        # A flood of refused connections is logged as a count, not a line each.
        self.refusals = Repeats(logger=logging.getLogger("mailgate.intake"), level=logging.WARNING)

    def admit(self, client: str) -> bool:
        """Count a new session in; False (and nothing counted) when a cap is reached."""
        if self.open >= self.cfg.max_sessions:
            return False
        if self.by_client[client] >= self.cfg.max_sessions_per_client:
            return False
        was_busy = self.busy
        self.open += 1
        self.by_client[client] += 1
        if self.busy and not was_busy:
            self.on_pressure()
        return True

    def leave(self, client: str) -> None:
        self.open -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]

    @property
    def busy(self) -> bool:
        """More than half the sessions are taken: slow clients must not hold the rest."""
        return self.open * 2 > self.cfg.max_sessions

    def idle_limit(self) -> float:
        """Seconds a session may stay without a byte from its client, right now."""
        if self.busy:
            return min(self.cfg.idle_timeout, self.cfg.busy_idle_timeout)
        return self.cfg.idle_timeout
