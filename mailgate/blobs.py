"""Attachment content stored once per sha256 under the data directory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlmodel import Session

from mailgate.models import Blob


def blob_path(data_dir: Path, sha256: str) -> Path:
    return data_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256


def put(session: Session, data_dir: Path, payload: bytes) -> str:
    """Store the content unless it is there already; returns its sha256.

    The file is written and synced before the row is committed, so a row never points at a
    missing file; a rolled-back transaction leaves at most an orphan file, which is harmless."""
    digest = hashlib.sha256(payload).hexdigest()
    if session.get(Blob, digest) is not None:
        return digest
    path = blob_path(data_dir, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    session.add(Blob(sha256=digest, size=len(payload), path=str(path.relative_to(data_dir))))
    session.flush()
    return digest


def read(data_dir: Path, sha256: str) -> bytes:
    return blob_path(data_dir, sha256).read_bytes()
