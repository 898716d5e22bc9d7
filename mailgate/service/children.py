"""Processes that mailgate starts beside itself (processing workers, the parser that works
ahead): their parent alone decides when they stop, and they end once it is gone."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger("mailgate.workers")

ORPHAN_CHECK_SECONDS = 1.0


def owned_by(parent_pid: int, name: str) -> None:
    """Make this pool process one that its parent alone ends: the parent decides when its
    children stop (the daemon after draining), so Ctrl-C in a terminal or systemd's SIGTERM
    to the whole group must not end one in the middle of a batch; and it ends by itself
    once the parent is gone. `name`: what ps and top show for it."""
    _call_it(name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(
        target=_end_with, args=(parent_pid,), name="mailgate-orphan-check", daemon=True
    ).start()


def _call_it(name: str) -> None:
    """Name this process where ps and top read it (Linux; 15 bytes at most): otherwise
    every process of mailgate is just `python3`, and an operator cannot tell which one
    grows or spins."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15], encoding="ascii")


def _end_with(parent_pid: int) -> None:
    """End this process once its parent is gone (killed, crashed). Its pool would never say
    so: a pool process holds a copy of its own job queue's writing end, and the fork server
    lives as long as any of them does. An unfinished transaction is rolled back by the
    database; its messages wait, stored, for the next start."""
    while True:
        time.sleep(ORPHAN_CHECK_SECONDS)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            log.warning("event=worker_orphaned parent_pid=%d", parent_pid)
            os._exit(1)
        except PermissionError:  # alive, and another user's (a reused pid): not ours
            os._exit(1)
