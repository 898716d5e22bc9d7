"""DATA bodies read many lines at a time: the same message as line by line, however the bytes
arrive, and nothing read past the final dot. A real asyncio stream reader, fed in pieces."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.intake.data import END, READER_LIMIT, Body, Refusal, read_body

NEXT_COMMAND = b"MAIL FROM:<next@example.org>\r\n"  # pipelined right after the final dot


def stuffed(message: bytes) -> bytes:
    """What a client sends for the message: a dot doubled at each line start, the final dot."""
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines) + END


def read(wire: bytes, pieces: Sequence[int], reader_limit: int, body: Body) -> bytes:
    """Feed the wire and a pipelined command in pieces of the given sizes while read_body
    reads; returns what the reader still holds after the final dot."""

    async def run() -> bytes:
        reader = asyncio.StreamReader(limit=reader_limit)
        task = asyncio.create_task(read_body(reader, body))
        data, start = wire + NEXT_COMMAND, 0
        for size in [*pieces, len(data)]:
            reader.feed_data(data[start : start + size])
            start += size
            await asyncio.sleep(0)  # the reader takes what is there, and waits for more
        await asyncio.wait_for(task, timeout=10)
        reader.feed_eof()
        return await reader.read()

    return asyncio.run(run())


# Messages of lines, each ending with CRLF, made of bytes that matter here: dots, bare CR
# and LF, and lines both short and longer than a small reader's buffer.
LINE = st.one_of(
    st.binary(max_size=12).map(lambda b: b.translate(bytes(b".\r\na" * 64))),
    st.sampled_from(
        [b"", b".", b"..", b".a", b"a.", b"\r", b"\n.", b"x" * 300, b"." * 70, b"\r" * 9]
    ),
)
MESSAGE = st.lists(LINE, max_size=40).map(
    lambda lines: b"".join(line.replace(b"\r\n", b"\r") + b"\r\n" for line in lines)
)


@settings(max_examples=400, deadline=None)
@given(
    message=MESSAGE,
    pieces=st.lists(st.integers(min_value=1, max_value=90), max_size=30),
    reader_limit=st.sampled_from([8, 64, 400, READER_LIMIT]),
)
def test_the_message_comes_back_as_sent_however_it_arrives(
    message: bytes, pieces: list[int], reader_limit: int
) -> None:
    body = Body(line_limit=10_000, size_limit=0)
    left = read(stuffed(message), pieces, reader_limit, body)
    assert body.refusal is None
    assert bytes(body.message) == message
    assert left == NEXT_COMMAND


@settings(max_examples=300, deadline=None)
@given(
    message=MESSAGE,
    pieces=st.lists(st.integers(min_value=1, max_value=90), max_size=30),
    reader_limit=st.sampled_from([8, 64, READER_LIMIT]),
    line_limit=st.integers(min_value=3, max_value=320),
    size_limit=st.integers(min_value=0, max_value=2000),
)
def test_limits_refuse_what_line_by_line_reading_refuses(
    message: bytes, pieces: list[int], reader_limit: int, line_limit: int, size_limit: int
) -> None:
    wire = stuffed(message)
    sent = wire[: -len(END)]
    # Line by line: a line is counted with its CRLF and its transparent dot.
    too_long = any(len(line) + 2 > line_limit for line in sent.split(b"\r\n")[:-1])
    too_large = bool(size_limit) and len(sent) > size_limit
    body = Body(line_limit, size_limit)
    left = read(wire, pieces, reader_limit, body)
    assert left == NEXT_COMMAND  # a refused message is read to its end all the same
    assert body.received == len(sent)
    if not (too_long or too_large):
        assert body.refusal is None and bytes(body.message) == message
        return
    assert body.message == b""
    if too_long and not too_large:
        assert body.refusal is Refusal.LINE_TOO_LONG
    elif too_large and not too_long:
        assert body.refusal is Refusal.TOO_LARGE
    else:  # which one is found first depends on how many lines are read at a time
        assert body.refusal in (Refusal.LINE_TOO_LONG, Refusal.TOO_LARGE)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b".\r\n", b""),  # an empty message
        (b"..\r\n.\r\n", b".\r\n"),  # its one line a lone dot
        (b"a.\r\n.\r\n", b"a.\r\n"),
        (b"a\r\n..\r\nb.\r\n.\r\n", b"a\r\n.\r\nb.\r\n"),
        (b"a\n.\r\n.\r\n", b"a\n.\r\n"),  # a bare LF does not start a line
        # CRs where a small reader's buffer ends: the CRLF after them ends the line.
        (b"\r\n...\r\n..........\r\r\n.\r\n", b"\r\n..\r\n.........\r\r\n"),
        (b"aaaaaaaaa\r\r\r\r\r\r\r\n.\r\n", b"aaaaaaaaa\r\r\r\r\r\r\r\n"),
        (b"aaaaaaaaa\r\r\n..\r\n.\r\n", b"aaaaaaaaa\r\r\n.\r\n"),
    ],
)
def test_final_dot_and_transparent_dots(wire: bytes, message: bytes) -> None:
    for pieces in ([], [1] * len(wire), [2, 1, 3], [20], [11], [12]):
        body = Body(line_limit=1000, size_limit=0)
        assert read(wire, pieces, 8, body) == NEXT_COMMAND
        assert bytes(body.message) == message


def test_a_large_attachment_with_no_line_ending_in_a_dot_comes_back_whole() -> None:
    """Base64 lines, none ending in a dot: runs far longer than the reader's buffer."""
    line = b"QUJD" * 19 + b"\r\n"
    message = b"Subject: big\r\n\r\n" + line * 20_000 + b"-- \r\nBye.\r\n"
    body = Body(line_limit=1001, size_limit=0)
    assert read(stuffed(message), [65_536] * 30, READER_LIMIT, body) == NEXT_COMMAND
    assert bytes(body.message) == message
