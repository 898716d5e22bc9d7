"""An SMTP DATA body read off the stream: its lines up to the lone dot, with the transparent
dots taken out (RFC 5321 4.5.2), within the line and size limits.

Reading line by line costs a wake-up and a pass through Python for each line (some 370 for
a 22 KB mail with an attachment): most of the CPU time a message costs the intake. Lines
here are taken many at a time, up to the next line that ends in a dot (whose every match
is a candidate for the final one), and checked and un-dotted by byte operations. Only a
line longer than the stream reader's buffer is read in pieces.
"""

from __future__ import annotations

import asyncio
import enum

CRLF = b"\r\n"
END = b".\r\n"  # at the start of a line: the end of the message
# The stream reader's buffer (it stops reading from the socket at twice this). A longer run
# of lines with none ending in a dot is taken a buffer at a time; a longer line, in parts.
READER_LIMIT = 1 << 16


class Refusal(enum.Enum):
    """Why the message is refused, once it has been read to its end."""

    LINE_TOO_LONG = "a line is longer than the limit"
    TOO_LARGE = "the message is larger than the limit"


class Body:
    """The message as it is read: what is kept, how much was sent, and why it is refused."""

    def __init__(self, line_limit: int, size_limit: int) -> None:
        self.line_limit = line_limit  # with CRLF and the transparent dot, as aiosmtpd counts
        self.size_limit = size_limit  # bytes as sent; 0: none
        self.message = bytearray()
        self.refusal: Refusal | None = None
        self.received = 0  # as sent: transparent dots and line ends included
        self.line_length = 0  # of the line being read, so far; 0 at the start of a line

    def lines(self, data: bytes) -> None:
        """Whole lines: `data` starts where a line starts and ends with CRLF."""
        self.received += len(data)
        if self.refusal is not None:
            return
        # A run no longer than the limit holds no line over it (most runs): no split needed.
        if len(data) > self.line_limit and max(map(len, data.split(CRLF))) + 2 > self.line_limit:
            self._refuse(Refusal.LINE_TOO_LONG)
        elif self.size_limit and self.received > self.size_limit:
            self._refuse(Refusal.TOO_LARGE)
        else:
            if data.startswith(b"."):
                data = data[1:]
            if b"\r\n." in data:
                data = data.replace(b"\r\n.", CRLF)
            self.message += data

    def part(self, piece: bytes) -> None:
        """Part of one line (all of it, when it ends with CRLF)."""
        line_starts = not self.line_length
        self.received += len(piece)
        self.line_length += len(piece)
        if self.refusal is None:
            if self.line_length > self.line_limit:
                self._refuse(Refusal.LINE_TOO_LONG)
            elif self.size_limit and self.received > self.size_limit:
                self._refuse(Refusal.TOO_LARGE)
            elif line_starts and piece.startswith(b"."):
                self.message += memoryview(piece)[1:]  # a view: no copy of the line
            else:
                self.message += piece
        if piece.endswith(CRLF):
            self.line_length = 0

    def _refuse(self, why: Refusal) -> None:
        self.refusal = why
        self.message.clear()  # none of it will be stored: give the memory back now


async def read_body(reader: asyncio.StreamReader, body: Body) -> None:
    """Read the body to its final dot. A refused message is still read to its end, keeping
    nothing more: the client's next command comes after it."""
    held_cr = False  # a part ended in CR, whose LF may be the next byte in the reader
    while True:
        if held_cr:
            held_cr = False
            piece = await _line_part(reader)
            if not piece.startswith(b"\n"):
                body.part(b"\r")  # a CR inside the line
            else:  # the held CR ended the line; the rest is (part of) the next one
                body.part(CRLF)
                piece = piece[1:]
                if piece == END:
                    return
            if piece:
                body.part(piece)
            continue
        if body.line_length:
            body.part(await _line_part(reader))
            continue
        try:
            data = await reader.readuntil(END)
        except asyncio.LimitOverrunError as exc:
            # No line ends in a dot for a whole buffer: its whole lines now, the rest of the
            # last one in parts. Its CR is held back when it ends the buffer: a CRLF is
            # never cut in two.
            chunk = await reader.readexactly(exc.consumed)
            last = chunk.rfind(CRLF)
            whole = last + len(CRLF) if last >= 0 else 0
            if whole:
                body.lines(chunk[:whole])
            rest = chunk[whole:]
            if rest.endswith(b"\r"):
                rest, held_cr = rest[:-1], True
            if rest:
                body.part(rest)
            continue
        # The first line that ends in a dot: the final one when it is a line of its own.
        if data == END:
            return
        if data.endswith(CRLF + END):
            body.lines(data[: -len(END)])
            return
        body.lines(data)


async def _line_part(reader: asyncio.StreamReader) -> bytes:
    """The rest of the line with its CRLF, or as much of it as the reader holds."""
    try:
        return await reader.readuntil(CRLF)
    except asyncio.LimitOverrunError as exc:
        return await reader.readexactly(exc.consumed)
