"""Property: any input, however damaged, reaches exactly one deliberate outcome in process()."""

from __future__ import annotations

import base64
import builtins
import os
import quopri
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from mailgate.flows.pipeline import process
from mailgate.outbound.context import Context
from mailgate.service.app import build_context
from mailgate.store.models import DONE, IGNORED, QUARANTINED, Intake
from mailgate.store.spool import accept
from tests.conftest import CORPUS, make_config

CORPUS_FILES = sorted(CORPUS.rglob("*.eml"))
SAMPLES = [path.read_bytes() for path in CORPUS_FILES]
# The pipeline's own catch-all quarantines with "ExceptionName: text"; a deliberate
# quarantine reason never looks like that.
EXCEPTION_REASON = re.compile(r"^(\w+): ")
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
# The time oracle: no message, whatever it holds, takes longer than this from intake to its
# outcome. Generous, since a small mail took 2.6 s on a machine busy with other work; a
# reading that grows with the square of the input passes it by far (20-90 s at 100-200 KB).
SECONDS_PER_MESSAGE = 5.0
MUTATED_EXAMPLES = int(os.environ.get("MAILGATE_PROPERTY_MUTATED", "1500"))
GENERATED_EXAMPLES = int(os.environ.get("MAILGATE_PROPERTY_GENERATED", "1000"))


@pytest.fixture
def pctx(tmp_path: Path) -> Iterator[Context]:
    """One SQLite context per test function; hypothesis examples share it."""
    context = build_context(make_config(tmp_path))
    yield context
    context.store.dispose()


def check_one(ctx: Context, raw: bytes) -> None:
    """Run one message through intake and processing; assert a single deliberate outcome,
    reached within the time budget."""
    started = time.monotonic()
    accepted = accept(ctx.store, raw, "smtp", ctx.clock(), "", ["support@example.com"])
    outcome = process(ctx, accepted.intake_id)
    took = time.monotonic() - started
    assert took < SECONDS_PER_MESSAGE, (f"{took:.1f} s", raw[:2000])
    assert outcome.status in (DONE, IGNORED, QUARANTINED), (outcome, raw[:2000])
    with ctx.store.session() as session:
        intake = session.exec(select(Intake).where(Intake.id == accepted.intake_id)).one()
    assert intake.status == outcome.status or accepted.duplicate
    if outcome.status == QUARANTINED:
        assert not from_exception(outcome.reason), (outcome.reason, raw[:4000])


def from_exception(reason: str) -> bool:
    """Whether a quarantine reason is the catch-all's "ExceptionName: text"."""
    match = EXCEPTION_REASON.match(reason)
    if match is None:
        return False
    name = match[1]
    known = getattr(builtins, name, None)
    is_builtin = isinstance(known, type) and issubclass(known, BaseException)
    return is_builtin or name.endswith(("Error", "Exception", "Failure", "Unavailable"))


# --- (a) mutations of the shared corpus -------------------------------------------------------


def flip_bytes(raw: bytes, positions: list[int], values: list[int]) -> bytes:
    data = bytearray(raw)
    for position, value in zip(positions, values, strict=False):
        if data:
            data[position % len(data)] = value
    return bytes(data)


def header_lines(raw: bytes, index: int, duplicate: bool) -> bytes:
    """Duplicate or drop one line of the header block."""
    head, sep, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    where = index % len(lines)
    if duplicate:
        lines.insert(where, lines[where])
    else:
        del lines[where]
    return b"\n".join(lines) + sep + body


def damage_boundary(raw: bytes, index: int, junk: bytes) -> bytes:
    """Replace one boundary delimiter line's tail with junk (or cut it short)."""
    lines = raw.split(b"\n")
    delimiters = [i for i, line in enumerate(lines) if line.startswith(b"--")]
    if not delimiters:
        return raw + b"\n--" + junk
    where = delimiters[index % len(delimiters)]
    line = lines[where]
    lines[where] = line[: max(2, len(line) // 2)] + junk
    return b"\n".join(lines)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "dup", "drop", "boundary"]))
        if kind == "flip":
            count = draw(st.integers(1, 8))
            positions = draw(st.lists(st.integers(0, 10**7), min_size=count, max_size=count))
            values = draw(st.lists(st.integers(0, 255), min_size=count, max_size=count))
            raw = flip_bytes(raw, positions, values)
        elif kind == "truncate":
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif kind in ("dup", "drop"):
            raw = header_lines(raw, draw(st.integers(0, 200)), kind == "dup")
        else:
            junk = draw(st.binary(max_size=12))
            raw = damage_boundary(raw, draw(st.integers(0, 50)), junk)
    return raw


@pytest.mark.skipif(not SAMPLES, reason="shared corpus not present")
@settings(SETTINGS, max_examples=MUTATED_EXAMPLES)
@given(raw=mutated())
def test_mutated_corpus_reaches_one_deliberate_outcome(pctx: Context, raw: bytes) -> None:
    check_one(pctx, raw)


# --- (b) generated MIME structures ------------------------------------------------------------

CONTENT_TYPES = [
    "text/plain",
    "text/html",
    "text/calendar",
    "application/pdf",
    "application/octet-stream",
    "application/ms-tnef",
    "image/png",
    "message/rfc822",
    "message/delivery-status",
    "text/rfc822-headers",
    "application/x-unknown",
]
MULTIPART_SUBTYPES = ["mixed", "alternative", "related", "report", "signed", "digest", "weird"]
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "x-bogus", ""]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus"]
TEXTS = st.text(max_size=80)
FILENAMES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["../../etc/passwd", "=?utf-8?b?w6TDtsO8LnBkZg==?=", "a\x00b.exe", "CON"]),
)


def encode(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    filename = draw(FILENAMES)
    text = draw(TEXTS)
    codec = charset if charset and charset != "x-bogus" else "utf-8"
    body = text.encode(codec, "replace") if draw(st.booleans()) else draw(st.binary(max_size=60))
    head = f"Content-Type: {content_type}" + (f'; charset="{charset}"' if charset else "")
    if filename is not None:
        head += f'; name="{filename}"\nContent-Disposition: attachment; filename="{filename}"'
    head += f"\nContent-Transfer-Encoding: {encoding}"
    return head.encode("utf-8", "surrogatepass") + b"\n\n" + encode(body, encoding)


def multipart(draw: st.DrawFn, depth: int) -> bytes:
    subtype = draw(st.sampled_from(MULTIPART_SUBTYPES))
    boundary = f"b{depth}-{draw(st.integers(0, 99))}"
    params = '; report-type="delivery-status"' if subtype == "report" else ""
    children = [
        draw(leaf()) if depth >= 3 or draw(st.booleans()) else multipart(draw, depth + 1)
        for _ in range(draw(st.integers(0, 4)))
    ]
    body = b"".join(b"--" + boundary.encode() + b"\n" + child + b"\n" for child in children)
    closing = b"--" + boundary.encode() + b"--\n" if draw(st.booleans()) else b""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}\n'
    return head.encode() + b"\n" + body + closing


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    sender = draw(
        st.sampled_from(
            [
                "Alice <alice@acme.example>",
                "MAILER-DAEMON@mx.example",
                "",
                "=?utf-8?q?B=C3=B6b?= <bob@b.example>",
                "broken <<@>",
            ]
        )
    )
    subject = draw(TEXTS).replace("\n", " ").replace("\r", " ")
    number = draw(st.integers(0, 10**9))
    head = (
        f"From: {sender}\nTo: support@example.com\nSubject: {subject}\n"
        f"Message-ID: <gen{number}@prop.example>\nMIME-Version: 1.0\n"
    )
    top = multipart(draw, 0) if draw(st.booleans()) else draw(leaf())
    return head.encode("utf-8", "surrogatepass") + top


@settings(SETTINGS, max_examples=GENERATED_EXAMPLES)
@given(raw=generated())
def test_generated_mime_reaches_one_deliberate_outcome(pctx: Context, raw: bytes) -> None:
    check_one(pctx, raw)


# --- (c) markup and text repeated until a reading that rescans would take minutes ------------

FRAGMENTS = [
    "<b",
    "a < b <c",
    '<a href="http://x.example/',
    "<!--",
    "</b",
    "<!x",
    "<?x",
    "<script>",
    "&#x",
    "begin 644 file.txt",
    "> quoted",
    "On Monday Bob wrote:",
    "-- ",
]


@st.composite
def repeated(draw: st.DrawFn) -> bytes:
    fragment = draw(st.sampled_from(FRAGMENTS)) + draw(st.text(max_size=6))
    ending = draw(st.sampled_from(["\n", "\r\n", " ", ""]))
    size = len(fragment + ending)
    times = draw(st.integers(100_000 // size, 200_000 // size))  # 100-200 KB
    subtype = draw(st.sampled_from(["html", "plain"]))
    head = (
        "From: Alice <alice@acme.example>\nTo: support@example.com\nSubject: Big\n"
        f"Message-ID: <rep{draw(st.integers(0, 10**9))}@prop.example>\nMIME-Version: 1.0\n"
        f"Content-Type: text/{subtype}; charset=utf-8\n\n"
    )
    return (head + (fragment + ending) * times).encode("utf-8", "surrogatepass")


@settings(SETTINGS, max_examples=int(os.environ.get("MAILGATE_PROPERTY_REPEATED", "60")))
@given(raw=repeated())
def test_repeated_fragments_stay_within_the_time_budget(pctx: Context, raw: bytes) -> None:
    check_one(pctx, raw)
