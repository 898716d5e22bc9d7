"""The file transport: each composed message written as one .eml file into a folder (the
embedded default, and the sink tests read)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from mailgate.outbound.transports import TemporaryFailure, utc_now
from mailgate.store.disk import sync_directory

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
STAMP = "%Y%m%dT%H%M%S.%fZ"  # when a file was written, first in its name (UTC)
# The outbox hands each mail the name hint "<row id>-<template>".
_NAMED = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-(\d+)-")


class FileTransport:
    """Writes each message as one .eml file; the embedded default, and handy in tests."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = utc_now) -> None:
        self.directory = Path(directory)
        self.clock = clock

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name_hint: str
    ) -> str:
        stem = f"{self.clock().astimezone(UTC):{STAMP}}-{_safe_name(name_hint)}"
        try:
            path = await asyncio.to_thread(self._write, raw, stem)
        except OSError as exc:  # disk full, permissions: may well be fixed by the next try
            raise TemporaryFailure(f"cannot write to {self.directory}: {exc}") from exc
        return str(path)

    async def close(self) -> None:
        return None

    def _write(self, raw: bytes, stem: str) -> Path:
        """Readers never see half a file: write a hidden temp file, sync, then publish."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            path = _publish(Path(tmp), self.directory, stem)
        finally:
            Path(tmp).unlink(missing_ok=True)
        sync_directory(self.directory)
        return path


def _safe_name(hint: str) -> str:
    name = _UNSAFE_NAME.sub("_", hint).strip("._")[:80]
    return name or "message"


def _publish(tmp: Path, directory: Path, stem: str) -> Path:
    """Link the finished file under its final name. Unlike rename, a link never replaces an
    existing file, so two mails with the same name both survive."""
    for n in range(1000):
        path = directory / (f"{stem}.eml" if n == 0 else f"{stem}-{n}.eml")
        try:
            os.link(tmp, path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free file name for {stem} in {directory}")


def named_in(name: str) -> tuple[datetime, int] | None:
    """When a sent file was written and the outbox row it holds, as its name says; None for a
    file this transport did not name (one put there by hand)."""
    match = _NAMED.match(name)
    if match is None:
        return None
    return datetime.strptime(match[1], STAMP).replace(tzinfo=UTC), int(match[2])
