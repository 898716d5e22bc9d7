"""Attachment content stored once per sha256 under the data directory."""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from sqlalchemy import Insert, event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from mailgate.store.database import direct
from mailgate.store.disk import sync_directory
from mailgate.store.models import Blob

# Directories that got a new name in a session's transaction, synced when it commits.
_UNSYNCED = "mailgate.unsynced_directories"
# Files being written for a session's transaction, by sha256: written by threads while the
# transaction goes on (writing and syncing a file is mostly waiting), awaited at its end.
_WRITES = "mailgate.blob_writes"
_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mailgate-blobs")
# The row, unless it exists (the same content in an earlier mail, or in another instance's
# transaction that got there first): one statement instead of a look-up and an insert.
_BLOBS = Blob.__table__  # type: ignore[attr-defined]


@functools.cache
def _insert_new(dialect_name: str) -> Insert:
    """Made for the database in use: PostgreSQL's dialect module costs a tenth of a command's
    start, for nothing on a SQLite desk."""
    dialect = importlib.import_module(f"sqlalchemy.dialects.{dialect_name}")
    new_only: Insert = dialect.insert(_BLOBS).on_conflict_do_nothing(index_elements=["sha256"])
    return new_only.returning(_BLOBS.c.sha256)


def blob_path(data_dir: Path, sha256: str) -> Path:
    return data_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256


def put(session: Session, data_dir: Path, payload: bytes) -> str:
    """Store the content unless it is there already; returns its sha256.

    The file is written and synced, and its name synced into its directory, before the row
    that refers to it is committed: a committed row never points at a missing file, even
    after a power cut. A rolled-back transaction leaves at most an orphan file, harmless,
    which the next mail with the same content takes over instead of writing it again."""
    digest = hashlib.sha256(payload).hexdigest()
    path = blob_path(data_dir, digest)
    writes: dict[str, Future[list[Path]]] = session.info.setdefault(_WRITES, {})
    if digest not in writes and not path.exists():
        writes[digest] = _WRITERS.submit(_write, path, payload)
    inserted = _add_row(session, digest, len(payload), str(path.relative_to(data_dir)))
    if inserted and digest not in writes:
        # An orphan file: its writer may have died before its name was synced.
        session.info.setdefault(_UNSYNCED, set()).add(path.parent)
    return digest


def _write(path: Path, payload: bytes) -> list[Path]:
    """Write the file under a temporary name, sync it, then rename it: the final name only
    ever holds complete content. Returns the directories that got a new name: the file's,
    and the parent of each directory made for it."""
    made = _make_directories(path.parent)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return [path.parent, *(d.parent for d in made)]


def _make_directories(directory: Path) -> list[Path]:
    """Create the directory and any missing parents; the ones created, outermost first.
    A look first: once the store has filled up, most blobs go to a directory that exists."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    made = list(reversed(missing))
    for directory in made:
        directory.mkdir(exist_ok=True)
    return made


@event.listens_for(Session, "before_commit")
def _sync_names(session: Session) -> None:
    """Put the new files and names on disk before the rows that point at them commit; each
    directory once, however many files of the transaction it got. A failed write (a full
    disk) raises here, and the transaction is rolled back."""
    directories = session.info.pop(_UNSYNCED, set())
    for written in session.info.pop(_WRITES, {}).values():
        directories.update(written.result())
    # At once: the file system commits its journal once for syncs that wait together.
    for synced in [_WRITERS.submit(sync_directory, d) for d in directories]:
        synced.result()


@event.listens_for(Session, "after_soft_rollback")
def _finish_writes(session: Session, _transaction: SessionTransaction) -> None:
    """A rolled-back transaction's files are finished all the same (orphans, harmless), so
    that the next mail with the same content finds each file whole or not at all."""
    session.info.pop(_UNSYNCED, None)
    wait(session.info.pop(_WRITES, {}).values())


def _add_row(session: Session, digest: str, size: int, path: str) -> bool:
    """Insert the Blob row at once, unless it exists; whether it was inserted. At once, so
    that it is in the database before the attachment rows that refer to it."""
    insert = _insert_new(session.get_bind().dialect.name)
    result = direct(session, insert, {"sha256": digest, "size": size, "path": path})
    return result.first() is not None


def read(data_dir: Path, sha256: str) -> bytes:
    return blob_path(data_dir, sha256).read_bytes()


def read_in(session: Session, data_dir: Path, sha256: str) -> bytes:
    """The content as this session's transaction knows it: a file the transaction is still
    writing (a mail's attachment, read for the notification the same mail causes) is waited
    for first, so that it is read whole and not found missing."""
    pending: dict[str, Future[list[Path]]] = session.info.get(_WRITES, {})
    if sha256 in pending:
        pending[sha256].result()
    return read(data_dir, sha256)
