"""A message for `mailgate ingest`, from a file or standard input: whole, or, over `[smtp]
max_message_size`, only its header and its size, as the IMAP intake takes such a message
(flows/oversize.py tells the sender). Parsing it whole is what the limit is there to prevent."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Of a message over the size limit only the header is kept, and at most this much of it.
HEAD_BYTES = 256 << 10
_CHUNK = 1 << 20  # standard input beyond the limit is counted a chunk at a time, not held


@dataclass(frozen=True)
class Withheld:
    """A message over the size limit: its header, and the size of the whole message."""

    head: bytes
    size: int


def read_message(name: str, limit: int) -> bytes | Withheld:
    """The file's bytes (`-`: standard input), or its header when it is over `limit`.
    OSError when it cannot be read."""
    if name == "-":
        return _read_stream(sys.stdin.buffer, limit)
    path = Path(name)
    if path.stat().st_size <= limit:
        return path.read_bytes()
    with path.open("rb") as file:
        return _read_stream(file, limit)


def _read_stream(stream: BinaryIO, limit: int) -> bytes | Withheld:
    data = stream.read(limit + 1)
    if len(data) <= limit:
        return data
    size = len(data)
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
    return Withheld(header_of(data[:HEAD_BYTES]), size)


def header_of(start: bytes) -> bytes:
    """The header section, with the blank line that ends it (as IMAP's BODY[HEADER] gives
    it); all of `start` when it holds no end of the header."""
    ends = [start.find(mark) + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if mark in start]
    return start[: min(ends)] if ends else start
