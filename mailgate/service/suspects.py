"""Messages in hand when a process died: processed alone from then on, and quarantined once
they were in hand at MAX_WORKER_DEATHS deaths, rather than kill worker after worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from mailgate.flows import pipeline
from mailgate.flows.pipeline import Outcome
from mailgate.outbound.context import Context
from mailgate.store.database import StoreUnavailable

log = logging.getLogger("mailgate.daemon")

# A batch whose worker process died is taken up again message by message; a message that
# was in hand at this many deaths is quarantined, since it is likely what kills the worker
# (or the daemon's own process, where it processes mail itself).
MAX_WORKER_DEATHS = 2


class Suspects(dict[int, int]):
    """Stored message id -> the deaths it was in hand for."""

    def after_death(self, batch: Sequence[int]) -> dict[int, int]:
        """The batch's messages with one death more each."""
        return {intake_id: self.get(intake_id, 0) + 1 for intake_id in batch}

    async def judge(self, ctx: Context, deaths: dict[int, int], why: str) -> list[Outcome]:
        """Note the deaths; quarantine the messages that reached MAX_WORKER_DEATHS. `why`:
        what processing them did ("ended the worker process", "took longer than 30 s").
        The quarantined messages' outcomes; one the database did not take stays suspect."""
        self.update(deaths)
        quarantined = []
        for intake_id in [i for i, times in deaths.items() if times >= MAX_WORKER_DEATHS]:
            reason = f"processing it {why} {MAX_WORKER_DEATHS} times"
            try:
                outcome = await asyncio.to_thread(pipeline.quarantine, ctx, intake_id, reason)
            except StoreUnavailable:
                continue  # still suspect: taken up again, and alone
            log.error("event=quarantine intake_id=%s error=%r", intake_id, reason)
            self.pop(intake_id, None)
            quarantined.append(outcome)
        return quarantined
