"""`mailgate db backup`: a consistent copy of a running desk (database, attachments, key)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailgate.config import Config
from mailgate.store.backup_files import (
    CLEAR_MARKS,
    DATA,
    DATABASE_FILE,
    EX_CANTCREAT,
    EX_CONFIG,
    EX_DATAERR,
    EX_NOINPUT,
    EX_TEMPFAIL,
    EX_USAGE,
    FORMAT,
    KEY_FILE,
    MANIFEST,
    BackupError,
    Entry,
    copy_file,
    safe_relative,
    sync_tree,
)
from mailgate.store.database import sqlite_file
from mailgate.store.disk import sync_directory
from mailgate.store.keys import key_file

# A progress bar over a known number of steps: cli.progress_bar, or nothing.
Progress = Callable[[int, str], AbstractContextManager[Callable[[], None]]]
# The database's answers to a query: rows as tuples.
Query = Callable[[str], list[tuple[Any, ...]]]

PG_ADVICE = (
    "the database is PostgreSQL: back it up with pg_dump first, then run "
    "`mailgate db backup --files-only DIR` for the attachments and the key "
    "(README, section Backups and restore)"
)


@contextmanager
def no_progress(_total: int, _label: str) -> Any:
    yield lambda: None


@dataclass(frozen=True)
class Facts:
    """What one snapshot of the database holds: schema, row counts, attachment files."""

    revision: str
    counts: dict[str, int]
    blobs: list[tuple[str, int, str]]  # sha256, size, path relative to the data directory


@dataclass(frozen=True)
class Made:
    directory: Path
    database: str  # sqlite | postgresql
    counts: dict[str, int]
    files: int
    size: int
    seconds: float


def make_backup(
    cfg: Config, target: Path, progress: Progress = no_progress, files_only: bool = False
) -> Made:
    """Copy the database (SQLite's online backup: one snapshot, while the daemon goes on),
    then the files that snapshot refers to, then the manifest; all under a temporary name
    beside `target`, renamed to it at the end, so that a half-done backup never looks done."""
    started = time.monotonic()
    database = _database_file(cfg, files_only)
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    # The backup holds the secret key and every customer's mail: its owner's alone.
    partial.mkdir(mode=0o700)
    try:
        entries: list[Entry] = []
        if database is not None:
            copy = partial / DATABASE_FILE
            _copy_database(database, copy, cfg.database.busy_timeout)
            entries.append(Entry.of(DATABASE_FILE, "database", copy))
            facts = _sqlite_facts(copy)
        else:
            facts = _postgres_facts(cfg)
        # Attachment files are written (and synced) before the rows that name them commit,
        # and never removed: every one the snapshot names is on disk, whole.
        with progress(len(facts.blobs), "copying attachments") as tick:
            for digest, size, path in facts.blobs:
                entries.append(_copy_blob(cfg.data_dir, path, partial, digest, size))
                tick()
        key = key_file(cfg)
        if key.is_file():
            size, digest = copy_file(key, partial / KEY_FILE, mode=0o600)
            entries.append(Entry(KEY_FILE, "key", size, digest))
        _write_manifest(partial, cfg, facts, "sqlite" if database else "postgresql", entries)
        sync_tree(partial)
        os.replace(partial, target)  # onto an empty directory too
        sync_directory(target.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    size = sum(entry.size for entry in entries)
    kind = "sqlite" if database else "postgresql"
    seconds = time.monotonic() - started
    return Made(target, kind, facts.counts, len(entries), size, seconds)


def _database_file(cfg: Config, files_only: bool) -> Path | None:
    """The SQLite file to copy; None on PostgreSQL with --files-only."""
    url = cfg.database.url
    if not url.startswith("sqlite"):
        if not files_only:
            raise BackupError(PG_ADVICE, EX_CONFIG)
        return None
    if files_only:
        raise BackupError(
            "--files-only is for PostgreSQL, whose database pg_dump copies; on SQLite "
            "`mailgate db backup DIR` copies the database and the files together",
            EX_USAGE,
        )
    path = sqlite_file(url)
    if path is None:
        raise BackupError("database.url: an in-memory database cannot be backed up", EX_CONFIG)
    if not path.is_file():
        raise BackupError(f"no database at {path.absolute()} (database.url)", EX_NOINPUT)
    return path


def _check_target(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise BackupError(f"{target} is a file: name a new directory", EX_CANTCREAT)
    held = sorted(entry.name for entry in target.iterdir())
    if held:
        raise BackupError(
            f"{target} is not empty (holds {_some(held)}): a backup goes into a new or "
            "empty directory, never over another",
            EX_CANTCREAT,
        )


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _copy_database(source: Path, copy: Path, busy_timeout: float) -> None:
    try:
        _online_backup(source, copy, busy_timeout)
    except (sqlite3.Error, _Locked) as exc:
        # Locked past busy_timeout, or unreadable: the operator may try again.
        raise BackupError(f"{source}: cannot copy the database: {exc}", EX_TEMPFAIL) from None
    with copy.open("rb") as file:
        os.fsync(file.fileno())


def _online_backup(source: Path, copy: Path, busy_timeout: float) -> None:
    # mode=rw: a missing file is an error, not a new empty database.
    src = sqlite3.connect(f"{source.absolute().as_uri()}?mode=rw", uri=True, timeout=busy_timeout)
    dst = sqlite3.connect(copy)
    try:
        # In one step: SQLite starts a backup taken in steps again whenever another
        # connection writes, and under a steady flow of mail it would never end. One step
        # reads one snapshot in one read transaction, which in WAL mode holds up no writer.
        src.backup(dst, progress=_deadline(busy_timeout), sleep=0.05)
        _clear_marks(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one file, without a log beside it
        (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
    finally:
        dst.close()
        src.close()
    if verdict != "ok":
        raise BackupError(f"{source}: the copy fails SQLite's check: {verdict}", EX_DATAERR)


class _Locked(Exception):
    pass


def _deadline(busy_timeout: float) -> Callable[[int, int, int], None]:
    """Python's backup waits for a locked database without end: called after each try,
    this gives up once the database has been busy for longer than the daemon would wait."""
    since: list[float] = []

    def check(status: int, _remaining: int, _total: int) -> None:
        if status not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            since.clear()
        elif not since:
            since.append(time.monotonic())
        elif time.monotonic() - since[0] > busy_timeout:
            raise _Locked(f"locked for over {busy_timeout:g} s (database.busy_timeout)")

    return check


def _clear_marks(copy: sqlite3.Connection) -> None:
    """See CLEAR_MARKS; the column is there from schema 0013 on."""
    columns = {row[1] for row in copy.execute("PRAGMA table_info(intake)")}
    if "in_hand_by" in columns:
        with copy:
            copy.execute(CLEAR_MARKS)


def _facts(query: Query, tables: Iterable[str]) -> Facts:
    (revision,) = query("SELECT version_num FROM alembic_version")[0]
    counts = {table: int(query(f'SELECT count(*) FROM "{table}"')[0][0]) for table in tables}
    blobs = [(str(d), int(s), str(p)) for d, s, p in query("SELECT sha256, size, path FROM blob")]
    return Facts(str(revision), dict(sorted(counts.items())), sorted(blobs, key=lambda b: b[2]))


def _sqlite_facts(copy: Path) -> Facts:
    conn = sqlite3.connect(copy)
    try:

        def query(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        tables = [
            name
            for (name,) in query("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_") and name != "alembic_version"
        ]
        return _facts(query, tables)
    finally:
        conn.close()


def _postgres_facts(cfg: Config) -> Facts:
    """The database as one transaction sees it: counts and files agree with each other."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from mailgate.store.database import Store, StoreUnavailable

    store = Store(cfg.database.url)
    try:
        with store.engine.connect() as plain:
            conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():

                def query(sql: str) -> list[tuple[Any, ...]]:
                    return [tuple(row) for row in conn.execute(text(sql))]

                tables = [
                    name
                    for (name,) in query(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    )
                    if name != "alembic_version"
                ]
                return _facts(query, tables)
    except OperationalError as exc:
        raise StoreUnavailable(str(exc.orig or exc).strip().splitlines()[0]) from exc
    finally:
        store.dispose()


def _copy_blob(data_dir: Path, path: str, partial: Path, digest: str, size: int) -> Entry:
    source = data_dir / safe_relative(path, f"blob {digest}")
    name = f"{DATA}/{Path(path).as_posix()}"
    try:
        copied, found = copy_file(source, partial / name)
    except FileNotFoundError:
        raise BackupError(
            f"{source}: missing: the database names it as attachment content {digest}",
            EX_NOINPUT,
        ) from None
    if (copied, found) != (size, digest):
        raise BackupError(
            f"{source}: damaged: {copied} bytes with checksum {found}, the database "
            f"says {size} bytes with {digest}",
            EX_DATAERR,
        )
    return Entry(name, "blob", copied, found)


def _write_manifest(
    partial: Path, cfg: Config, facts: Facts, database: str, entries: list[Entry]
) -> None:

    manifest = {
        "format": FORMAT,
        "mailgate_version": _version(),
        "schema_revision": facts.revision,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "data_dir": str(cfg.data_dir.absolute()),
        "counts": facts.counts,
        "files": [asdict(entry) for entry in entries],
    }
    path = partial / MANIFEST
    with path.open("x", encoding="utf-8") as file:
        json.dump(manifest, file, indent=2)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mailgate")
    except PackageNotFoundError:
        return "unknown"
