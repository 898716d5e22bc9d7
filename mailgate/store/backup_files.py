"""A backup's layout and manifest, and copying files with their checksums."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mailgate.store.disk import sync_directory

# sysexits(3) as the standard library names them (the command line's are the same).
EX_USAGE, EX_DATAERR, EX_NOINPUT = os.EX_USAGE, os.EX_DATAERR, os.EX_NOINPUT
EX_CANTCREAT, EX_TEMPFAIL, EX_CONFIG = os.EX_CANTCREAT, os.EX_TEMPFAIL, os.EX_CONFIG

FORMAT = 1  # of the manifest; a later mailgate that changes it counts up
MANIFEST = "manifest.json"
DATABASE_FILE = "mailgate.db"
KEY_FILE = "secret.key"
DATA = "data"  # the data directory's files (attachment contents) are under this folder
KINDS = ("database", "blob", "key")
# Messages a daemon had in hand (service/deaths.py) when the database was copied: their process was
# alive then, and a restored daemon would count each mark as a death, and quarantine a
# message at the second. In the restored desk they wait, as after a clean stop.
CLEAR_MARKS = "UPDATE intake SET in_hand_by = '' WHERE in_hand_by <> ''"
_PIECE = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BackupError(Exception):
    """A backup or restore that cannot go on, worded for the operator, with its exit status
    and, for a damaged backup, one line per file."""

    def __init__(self, message: str, status: int, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or []


@dataclass(frozen=True)
class Entry:
    """One file of a backup: where in it, what it is, its size and sha256."""

    path: str  # relative to the backup's directory, with /
    kind: str  # database | blob | key
    size: int
    sha256: str

    @classmethod
    def of(cls, path: str, kind: str, file: Path) -> Entry:
        size, digest = file_digest(file)
        return cls(path, kind, size, digest)


@dataclass(frozen=True)
class Manifest:
    directory: Path
    data: dict[str, Any]
    entries: list[Entry]

    @property
    def database(self) -> str:
        return str(self.data.get("database", ""))

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.data.get("counts", {}))

    def of_kind(self, kind: str) -> list[Entry]:
        return [entry for entry in self.entries if entry.kind == kind]


def copy_file(source: Path, target: Path, mode: int = 0o640) -> tuple[int, str]:
    """Copy a file that must not exist yet, synced; the size and sha256 of what was read."""
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as dst:
            while piece := src.read(_PIECE):
                digest.update(piece)
                dst.write(piece)
                size += len(piece)
            dst.flush()
            os.fsync(dst.fileno())
    return size, digest.hexdigest()


def file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while piece := file.read(_PIECE):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


def safe_relative(path: str, what: str) -> PurePosixPath:
    """A relative path that stays below its folder; anything else is refused, so that a
    damaged or forged manifest or row never writes or reads outside it."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or ".." in pure.parts:
        raise BackupError(f"{what}: {path!r} is not a path inside the data directory", EX_DATAERR)
    return pure


def sync_tree(root: Path) -> None:
    """Every directory under root synced: the names of the files in it survive a crash."""
    for directory, _subdirs, _files in os.walk(root):
        sync_directory(Path(directory))


def read_manifest(directory: Path) -> Manifest:
    """The backup's manifest, each entry checked for its form (not yet its file)."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise BackupError(f"{directory}: no such directory", EX_NOINPUT)
    if not path.is_file():
        raise BackupError(
            f"{path}: missing: not a mailgate backup, or one that did not finish", EX_NOINPUT
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if not isinstance(data.get("format"), int) or data["format"] > FORMAT:
            raise ValueError(f"format {data.get('format')!r}; this mailgate reads {FORMAT}")
        entries = [_entry(item) for item in data["files"]]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path}: not a mailgate backup manifest: {exc}", EX_DATAERR) from None
    for kind in ("database", "key"):
        if sum(entry.kind == kind for entry in entries) > 1:
            raise BackupError(f"{path}: names more than one {kind} file", EX_DATAERR)
    return Manifest(directory, data, entries)


def _entry(item: Any) -> Entry:
    entry = Entry(str(item["path"]), str(item["kind"]), int(item["size"]), str(item["sha256"]))
    safe_relative(entry.path, "manifest")
    if entry.kind not in KINDS or not _SHA256.match(entry.sha256) or entry.size < 0:
        raise ValueError(f"entry {item!r}")
    if entry.kind == "blob" and not entry.path.startswith(f"{DATA}/"):
        raise ValueError(f"attachment file {entry.path!r} outside {DATA}/")
    return entry
