"""What the command line may add to the daemon (the web desk), and what of the daemon it
may use: the layers above the service (mailgate.web) plug in here, never the reverse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mailgate.outbound.context import Context


@dataclass(frozen=True)
class Host:
    context: Callable[[], Context]  # the daemon's current one: a reload replaces it
    # Mail was queued: send it now, not at the next retry. Safe to call from any thread.
    wake_outbox: Callable[[], None]


class HostedPart(Protocol):
    async def start(self, host: Host) -> None: ...

    async def stop(self) -> None: ...
