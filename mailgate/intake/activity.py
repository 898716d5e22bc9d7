"""A count of things in progress, and an event that is set whenever there are none."""

from __future__ import annotations

import asyncio


class Activity:
    """What shutdown waits for: entered when a piece of work starts, left when it ends."""

    def __init__(self) -> None:
        self.count = 0
        self.quiet = asyncio.Event()
        self.quiet.set()

    def enter(self) -> None:
        self.count += 1
        self.quiet.clear()

    def leave(self) -> None:
        self.count -= 1
        if not self.count:
            self.quiet.set()
