"""Cluster-wide locks: with several instances on one PostgreSQL database, one of them at a time
polls a mailbox or runs a job. On SQLite (one machine, one daemon) every lock is granted."""

from __future__ import annotations

import contextlib
import hashlib
import logging

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from mailgate.store.database import Store

log = logging.getLogger("mailgate.locks")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks, from a readable name."""
    return int.from_bytes(
        hashlib.sha256(f"mailgate:{name}".encode()).digest()[:8], "big", signed=True
    )


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection of its own. It is held until
    released, or until the holder dies: then its connection closes and the server lets go,
    so another instance's next try succeeds."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.key = lock_key(name)
        self._connection: Connection | None = None

    @property
    def held(self) -> bool:
        return self.store.is_sqlite or self._connection is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits. False also when the database
        cannot be reached (whoever holds the lock may still be working)."""
        if self.held:
            return True
        try:
            # Autocommit: the lock belongs to the session, and an open transaction idling for
            # hours would hold back the server's vacuum.
            connection = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as exc:
            log.debug("event=lock_unreachable lock=%s error=%r", self.name, str(exc))
            return False
        try:
            query = text("SELECT pg_try_advisory_lock(:key)")
            got = bool(connection.execute(query, {"key": self.key}).scalar())
        except DBAPIError as exc:
            log.debug("event=lock_unreachable lock=%s error=%r", self.name, str(exc))
            got = False
        if not got:
            connection.close()
            return False
        self._connection = connection
        log.debug("event=lock_acquired lock=%s", self.name)
        return True

    def still_held(self) -> bool:
        """Whether the lock's connection still answers; a lost connection has lost the lock,
        and another instance may hold it now."""
        if self.store.is_sqlite:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            return True
        except DBAPIError:
            log.warning("event=lock_lost lock=%s", self.name)
            self._drop()
            return False

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            log.debug("event=lock_released lock=%s", self.name)
        except DBAPIError:
            pass  # the connection is gone, and the lock with it
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(DBAPIError):  # already broken: nothing left to close
                connection.close()
