"""Attachment content: stored once, never rewritten, its name on disk before its row commits."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlmodel import select

from mailgate.outbound.context import Context
from mailgate.store import blobs
from mailgate.store.models import Blob

PAYLOAD = b"%PDF-1.4 invoice" * 100


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was fsynced, by path, in order."""
    done: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        done.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return done


def data_dir(ctx: Context) -> Path:
    return ctx.config.data_dir


def stored(ctx: Context) -> list[Blob]:
    with ctx.store.session() as session:
        return list(session.exec(select(Blob)))


def test_file_and_its_directories_are_synced_before_the_row_commits(
    ctx: Context, synced: list[str]
) -> None:
    path = blobs.blob_path(data_dir(ctx), hashlib.sha256(PAYLOAD).hexdigest())
    made = [d for d in path.parents if not d.exists()]
    with ctx.store.session() as session:
        assert blobs.put(session, data_dir(ctx), PAYLOAD) == path.name
        # Written by a writer thread meanwhile; no name is synced before the commit.
        assert all(name.endswith(".tmp") for name in synced)
    # The file under its temporary name first; then the file's directory and the parent of
    # each directory made for it, once each, before the commit returned.
    assert synced[0].startswith(f"{path}.{os.getpid()}.") and synced[0].endswith(".tmp")
    assert made and sorted(synced[1:]) == sorted({str(path.parent), *(str(d.parent) for d in made)})
    assert path.read_bytes() == PAYLOAD
    assert [(b.sha256, b.size) for b in stored(ctx)] == [(path.name, len(PAYLOAD))]


def test_stored_content_is_neither_written_nor_synced_again(
    ctx: Context, synced: list[str]
) -> None:
    with ctx.store.session() as session:
        digest = blobs.put(session, data_dir(ctx), PAYLOAD)
    path = blobs.blob_path(data_dir(ctx), digest)
    written = path.stat().st_mtime_ns
    synced.clear()
    with ctx.store.session() as session:
        assert blobs.put(session, data_dir(ctx), PAYLOAD) == digest
        assert blobs.put(session, data_dir(ctx), PAYLOAD) == digest  # twice in one transaction
    assert synced == []
    assert path.stat().st_mtime_ns == written
    assert len(stored(ctx)) == 1


def test_a_rolled_back_file_is_taken_over_by_the_next_mail(ctx: Context, synced: list[str]) -> None:
    with pytest.raises(RuntimeError), ctx.store.session() as session:
        digest = blobs.put(session, data_dir(ctx), PAYLOAD)
        raise RuntimeError("the message failed after its attachment was stored")
    assert stored(ctx) == []
    path = blobs.blob_path(data_dir(ctx), digest)
    written = path.stat().st_mtime_ns
    synced.clear()
    with ctx.store.session() as session:
        assert blobs.put(session, data_dir(ctx), PAYLOAD) == digest
    # Not written again; its name synced, in case its writer died before doing so.
    assert path.stat().st_mtime_ns == written
    assert synced == [str(path.parent)]
    assert [b.sha256 for b in stored(ctx)] == [digest]


def test_a_lost_file_of_a_stored_row_is_written_again(ctx: Context) -> None:
    with ctx.store.session() as session:
        digest = blobs.put(session, data_dir(ctx), PAYLOAD)
    path = blobs.blob_path(data_dir(ctx), digest)
    path.unlink()
    with ctx.store.session() as session:
        assert blobs.put(session, data_dir(ctx), PAYLOAD) == digest
    assert blobs.read(data_dir(ctx), digest) == PAYLOAD
    assert len(stored(ctx)) == 1
