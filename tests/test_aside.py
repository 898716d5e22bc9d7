"""Large base64 attachments decoded from the raw bytes before the stdlib parser runs: the
parsed mail must be exactly what the usual way gives, with a fraction of the memory, and
whatever only looks like such a part must go the usual way."""

from __future__ import annotations

import base64
import os
import tracemalloc

import pytest

from mailgate.reading.mime import aside
from mailgate.reading.parse import ParsedMail, parse
from tests.mails import make_mail

MB = 1 << 20


def both_ways(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[ParsedMail, ParsedMail]:
    quick = parse(raw)
    with monkeypatch.context() as patched:
        patched.setattr(aside, "LARGE", 1 << 40)
        usual = parse(raw)
    return quick, usual


def peak_while_parsing(raw: bytes) -> int:
    tracemalloc.start()
    try:
        parse(raw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_attachments_parse_the_same_with_a_fraction_of_the_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = (
        ("scan.pdf", "application/pdf", os.urandom(2 * MB)),
        ("notes.txt", "text/plain", b"small\n" * 10),
        ("logs.tar.gz", "application/gzip", os.urandom(3 * MB)),
    )
    raw = make_mail(subject="Unterlagen", attachments=files)
    for line_end in (b"\r\n", b"\n"):
        mail = raw.replace(b"\r\n", b"\n").replace(b"\n", line_end)
        quick, usual = both_ways(mail, monkeypatch)
        assert quick == usual
        assert [p.payload for p in quick.parts] == [f[2] for f in files]
        assert quick.text.startswith("Our printer does not print.")

    set_aside = peak_while_parsing(raw)
    monkeypatch.setattr(aside, "LARGE", 1 << 40)
    usual = peak_while_parsing(raw)
    # The decoded files are held either way; the usual way also held each base64 body as
    # lines, then joined: over twice the message on top.
    assert set_aside < len(raw) < usual


def _multipart(boundary: str, *parts: str) -> bytes:
    head = (
        "From: kunde@firma.example\r\nTo: support@example.com\r\nSubject: Anhang\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    )
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return f"{head}{body}--{boundary}--\r\n".encode("ascii")


def _base64_lines(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n").rstrip("\r\n")


def test_what_only_looks_like_a_large_part_goes_the_usual_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded = _base64_lines(os.urandom(MB + 1000))
    fake = f"--inner\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--inner--"
    quoting = _multipart(
        "outer", f"Content-Type: text/plain\r\n\r\nWhat the other system sent:\r\n{fake}"
    )
    embedded = _multipart(
        "outer",
        "Content-Type: text/plain\r\n\r\nForwarded.",
        "Content-Type: message/rfc822\r\n\r\n"
        + _multipart(
            "inner",
            "Content-Type: text/plain\r\n\r\nSee attached.",
            "Content-Type: application/pdf; name=a.pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}",
        ).decode("ascii"),
    )
    bad_padding = _multipart(
        "outer",
        "Content-Type: text/plain\r\n\r\nHello",
        "Content-Type: application/pdf; name=b.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded[:-2]}A",
    )
    for raw in (quoting, embedded, bad_padding):
        quick, usual = both_ways(raw, monkeypatch)
        assert quick == usual
        written = quick.text + "".join(p.payload.decode("latin-1") for p in quick.parts)
        assert "mailgateaside" not in written

    quoted, _ = both_ways(quoting, monkeypatch)
    assert encoded[:200] in quoted.text.replace("\n", "\r\n")  # the text as sent
    forwarded, _ = both_ways(embedded, monkeypatch)
    line = encoded.split("\r\n")[1].encode("ascii")
    assert line in forwarded.parts[0].payload  # the .eml as sent (line ends are the generator's)
    repaired, _ = both_ways(bad_padding, monkeypatch)
    assert "bad-base64" in repaired.defects
