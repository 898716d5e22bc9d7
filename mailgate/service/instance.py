"""One daemon per SQLite database: an exclusive lock on a file beside it, held for life."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class AlreadyRunning(Exception):
    """Another process holds the database's daemon lock."""

    def __init__(self, path: Path, holder: str) -> None:
        who = f"pid {holder}" if holder else "a process that has not written its pid yet"
        super().__init__(f"another mailgate daemon ({who}) runs on this database; lock file {path}")
        self.path = path


class InstanceLock:
    """The open, locked file. flock belongs to the open file: the kernel lets go when the
    process ends however it ends (kill -9 included), so a stale lock cannot outlive it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    def release(self) -> None:
        # The file stays: removing it would let a newcomer lock a fresh file while a
        # third process still waits on the old one.
        os.close(self.fd)


def lock_path(url: str) -> Path | None:
    """`<database>.lock` for a SQLite file; None for PostgreSQL (advisory locks keep
    several instances apart there) and for an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    # Beside the file itself: two configurations may name it by different paths (a
    # symbolic link, `./`), and must still find one lock.
    database = Path(parsed.database).resolve()
    return database.with_name(f"{database.name}.lock")


def hold(url: str) -> InstanceLock | None:
    """Take the daemon lock of this database, or raise AlreadyRunning naming the holder."""
    path = lock_path(url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not inherited by the worker processes (close-on-exec): the lock is the daemon's.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise AlreadyRunning(path, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return InstanceLock(path, fd)


def _holder(fd: int) -> str:
    """The pid the holder wrote; empty if it has not yet (or the file is not ours)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return text if text.isdigit() else ""
    return ""
