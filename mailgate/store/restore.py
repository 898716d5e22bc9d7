"""`mailgate db restore`: a checked backup into an empty data directory and a new database."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mailgate.config import Config
from mailgate.store.backup import Progress, no_progress
from mailgate.store.backup_files import (
    CLEAR_MARKS,
    DATA,
    EX_CANTCREAT,
    EX_CONFIG,
    EX_DATAERR,
    BackupError,
    Entry,
    Manifest,
    copy_file,
    file_digest,
    read_manifest,
    safe_relative,
    sync_tree,
)
from mailgate.store.database import head_revision, sqlite_file
from mailgate.store.disk import sync_directory
from mailgate.store.keys import key_file

_SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class Restored:
    database: Path | None  # the SQLite file written; None for a PostgreSQL backup's files
    data_dir: Path
    counts: dict[str, int]
    blobs: int
    size: int
    revision: str  # the schema the backup's database is at
    seconds: float


def restore(cfg: Config, directory: Path, progress: Progress = no_progress) -> Restored:
    """Check every file of the backup, then the target, then copy; nothing is written
    unless all of the backup is whole and the target holds nothing it could overwrite."""
    started = time.monotonic()
    manifest = read_manifest(directory)
    database = _target_database(cfg, manifest)
    _check_revision(manifest)
    verify(manifest, progress)
    _check_empty(cfg, manifest, database)
    if database is None:
        _prepare_postgres(cfg)
    written: list[Path] = []  # what to take away again if the restore fails
    try:
        _restore_files(cfg, manifest, progress, written)
        if database is not None:
            (entry,) = manifest.of_kind("database")
            _restore_database(directory / entry.path, database, entry)
    except BaseException:
        for path in reversed(written):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
    blobs = manifest.of_kind("blob")
    return Restored(
        database,
        cfg.data_dir,
        manifest.counts,
        len(blobs),
        sum(entry.size for entry in manifest.entries),
        str(manifest.data.get("schema_revision", "")),
        time.monotonic() - started,
    )


def verify(manifest: Manifest, progress: Progress = no_progress) -> None:
    """Every file there, of its size and checksum; else each damaged one named."""
    problems = []
    with progress(len(manifest.entries), "checking the backup") as tick:
        for entry in manifest.entries:
            problem = _problem(manifest.directory / entry.path, entry)
            if problem:
                problems.append(problem)
            tick()
    if problems:
        shown = problems[:_SHOWN_PROBLEMS]
        if len(problems) > _SHOWN_PROBLEMS:
            shown.append(f"... and {len(problems) - _SHOWN_PROBLEMS} more")
        raise BackupError(
            f"{manifest.directory}: the backup is damaged ({len(problems)} of "
            f"{len(manifest.entries)} files); nothing was restored",
            EX_DATAERR,
            shown,
        )


def _problem(path: Path, entry: Entry) -> str:
    try:
        size, digest = file_digest(path)
    except FileNotFoundError:
        return f"{path}: missing"
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    if size != entry.size:
        return f"{path}: {size} bytes, the manifest says {entry.size}"
    if digest != entry.sha256:
        return f"{path}: its checksum does not match the manifest (damaged or changed)"
    return ""


def _target_database(cfg: Config, manifest: Manifest) -> Path | None:
    """The SQLite file to write; None when the backup has no database (PostgreSQL's)."""
    sqlite = cfg.database.url.startswith("sqlite")
    if manifest.database == "postgresql":
        if sqlite:
            raise BackupError(
                "this backup holds the files of a PostgreSQL desk, not its database: "
                "pg_restore the dump into PostgreSQL, point database.url at it, then "
                "restore the files (README, section Backups and restore)",
                EX_CONFIG,
            )
        return None
    if not manifest.of_kind("database"):
        raise BackupError(f"{manifest.directory}: the manifest names no database", EX_DATAERR)
    if not sqlite:
        raise BackupError(
            "database.url names PostgreSQL, this backup holds a SQLite database: restore "
            "it with a SQLite database.url (README, section Backups and restore)",
            EX_CONFIG,
        )
    path = sqlite_file(cfg.database.url)
    if path is None:
        raise BackupError("database.url: cannot restore into an in-memory database", EX_CONFIG)
    return path


def _check_revision(manifest: Manifest) -> None:
    revision = str(manifest.data.get("schema_revision", ""))
    head = head_revision()
    if revision > head:
        raise BackupError(
            f"the backup's database is at schema {revision}, newer than this mailgate's "
            f"({head}): restore it with the mailgate version that made it",
            EX_CONFIG,
        )


def _check_empty(cfg: Config, manifest: Manifest, database: Path | None) -> None:
    """Refuse a target that holds anything: a restore never mixes two desks."""
    if database is not None:
        for path in (database, database.with_name(f"{database.name}-wal")):
            if path.exists():
                raise BackupError(
                    f"a database is already at {path}: restore only into a new desk "
                    "(move it away first; it was not changed)",
                    EX_CANTCREAT,
                )
    data_dir = cfg.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise BackupError(f"the data directory {data_dir} is a file", EX_CANTCREAT)
    if data_dir.exists():
        held = sorted(entry.name for entry in data_dir.iterdir())
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise BackupError(
                f"the data directory {data_dir} is not empty (holds {shown}): "
                "restore only into an empty one, so that no file of another desk is mixed "
                "in or overwritten",
                EX_CANTCREAT,
            )
    key = key_file(cfg)
    keys = manifest.of_kind("key")
    if keys and key.exists() and file_digest(key)[1] != keys[0].sha256:
        raise BackupError(
            f"a different secret key is already at {key} (security.secret_file): the "
            "restored desk needs the backup's, or the signed addresses in its mail no "
            "longer verify; move it away first",
            EX_CANTCREAT,
        )


def _prepare_postgres(cfg: Config) -> None:
    """The database pg_restore filled, for the files restored beside it: it must hold the
    desk, and the messages in hand at the dump wait again (CLEAR_MARKS). Run while every
    instance is stopped, as the README's steps say: then no mark is a live one."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import OperationalError

    from mailgate.store.database import Store, StoreUnavailable

    store = Store(cfg.database.url)
    try:
        with store.engine.begin() as conn:
            if not inspect(conn).has_table("intake"):
                raise BackupError(
                    "the database at database.url holds no mailgate desk: pg_restore the "
                    "dump into it first (README, section Backups and restore)",
                    EX_CONFIG,
                )
            if "in_hand_by" in {c["name"] for c in inspect(conn).get_columns("intake")}:
                conn.execute(text(CLEAR_MARKS))
    except OperationalError as exc:
        raise StoreUnavailable(str(exc.orig or exc).strip().splitlines()[0]) from exc
    finally:
        store.dispose()


def _restore_files(
    cfg: Config, manifest: Manifest, progress: Progress, written: list[Path]
) -> None:

    data_dir = cfg.data_dir
    if not data_dir.exists():
        data_dir.mkdir(parents=True)
        written.append(data_dir)
    blobs = manifest.of_kind("blob")
    with progress(len(blobs), "restoring attachments") as tick:
        for entry in blobs:
            relative = safe_relative(entry.path, "manifest").relative_to(DATA)
            target, top = data_dir / relative, data_dir / relative.parts[0]
            if not top.exists():  # the data directory was empty: all below it is ours
                written.append(top)
            _copy_checked(manifest.directory / entry.path, target, entry)
            tick()
    key, keys = key_file(cfg), manifest.of_kind("key")
    if keys and not key.exists():
        written.append(key)
        _copy_checked(manifest.directory / keys[0].path, key, keys[0], mode=0o600)
        sync_directory(key.parent)
    sync_tree(data_dir)


def _copy_checked(source: Path, target: Path, entry: Entry, mode: int = 0o640) -> None:
    """Copied and checked once more: the backup may have changed since it was verified."""
    if copy_file(source, target, mode) != (entry.size, entry.sha256):
        raise BackupError(f"{source}: changed while it was being restored", EX_DATAERR)


def _restore_database(source: Path, database: Path, entry: Entry) -> None:
    """Copied under a temporary name and linked into place last: a database that appears
    is whole, and one that appeared meanwhile is not overwritten."""
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(f".{database.name}.restoring-{os.getpid()}")
    try:
        _copy_checked(source, partial, entry)
        try:
            os.link(partial, database)
        except FileExistsError:
            raise BackupError(
                f"a database appeared at {database} during the restore; it was left alone",
                EX_CANTCREAT,
            ) from None
    finally:
        partial.unlink(missing_ok=True)
    sync_directory(database.parent)
