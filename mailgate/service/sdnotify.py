"""The systemd notification protocol: one datagram of `KEY=value` lines to $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("mailgate.daemon")

# A change of state (READY, RELOADING, STOPPING) waits this long at most for room in the
# manager's queue: losing READY would have systemd end the service as never started.
STATE_WAIT = 1.0


class Notifier:
    """Tells the service manager how the daemon is doing; silent when none is listening."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(env)
        self._failing = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str, wait: float = 0.0) -> bool:
        """One datagram; False when there is nobody to tell or it could not be sent within
        `wait` seconds. This runs on the event loop: a manager that does not read fills its
        queue (ten datagrams by default, seconds of watchdog pings), and a send that waited
        for room would stop the whole daemon, SMTP and shutdown included. So a ping never
        waits (the next one follows), and a change of state waits a moment at most."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(wait)  # 0: never blocks
                sock.connect(self.address)
                sock.send("\n".join(lines).encode("utf-8"))
        except OSError as exc:
            # A manager that went away or stopped reading is logged once, not at every ping.
            if not self._failing:
                log.warning("event=notify_failed error=%r", str(exc) or type(exc).__name__)
            self._failing = True
            return False
        self._failing = False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={_one_line(status)}", wait=STATE_WAIT)

    def reloading(self, status: str) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload managers match this to their own SIGHUP.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        lines = ("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={_one_line(status)}")
        return self.send(*lines, wait=STATE_WAIT)

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={_one_line(status)}", wait=STATE_WAIT)

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={_one_line(status)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")


def _address(value: str) -> str:
    # A leading '@' names a socket in Linux's abstract namespace, which starts with a NUL byte.
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings: half the manager's timeout, as sd_watchdog_enabled(3) advises."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    # The variables may be inherited from a parent the watchdog is really meant for.
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2 / 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def keep_watchdog_fed(loop_healthy: Callable[[], bool], notifier: Notifier) -> None:
    """Tell systemd's watchdog the daemon lives, as long as its loops do. Not tied to the
    database: an outage there is answered with 451, not a restart."""
    while True:
        if loop_healthy():
            notifier.watchdog()
        await asyncio.sleep(notifier.watchdog_interval)
