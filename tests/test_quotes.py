"""strip_quotes against replies as the common mail clients format them, and edge cases."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailgate.reading.quotes import strip_quotes

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
CASES = sorted(p for p in FIXTURES.glob("*.txt") if not p.name.endswith(".expected.txt"))


def test_every_client_format_has_a_fixture() -> None:
    names = {p.stem for p in CASES}
    for client in ("outlook", "thunderbird", "gmail", "apple"):
        assert {f"{client}_de", f"{client}_en"} <= names
    assert "inline_en" in names


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_fixture(path: Path) -> None:
    expected = path.with_name(f"{path.stem}.expected.txt").read_text(encoding="utf-8")
    assert strip_quotes(path.read_text(encoding="utf-8")) == expected.rstrip("\n")


def test_crlf_line_endings() -> None:
    text = (FIXTURES / "thunderbird_de.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    expected = (FIXTURES / "thunderbird_de.expected.txt").read_text(encoding="utf-8")
    assert strip_quotes(text) == expected.rstrip("\n")


def test_no_quote_is_unchanged() -> None:
    text = "Hello,\n\nthe VPN drops every 10 minutes.\n\n  Thanks, I tried a reboot.\nAnna"
    assert strip_quotes(text) == text


def test_only_a_quote_keeps_the_original() -> None:
    text = "On Mon, Nov 2, 2026 at 10:00 AM Support <support@example.com> wrote:\n> Hi,\n> done?\n"
    assert strip_quotes(text) == text.strip()


def test_empty_text() -> None:
    assert strip_quotes("") == ""
    assert strip_quotes("  \n\n") == ""


def test_commands_on_the_first_lines_are_kept() -> None:
    text = (
        "#status working\n#time 0h30 billable\n\nHallo Herr Vogt,\n\n"
        "wir kümmern uns darum.\n\nGruß\nPetra\n\n"
        "Am 02.11.2026 um 14:03 schrieb Markus Vogt <m.vogt@kunde.de>:\n"
        "> #status ist kein Befehl hier\n> Der Belegdruck geht nicht.\n"
    )
    assert strip_quotes(text) == (
        "#status working\n#time 0h30 billable\n\nHallo Herr Vogt,\n\n"
        "wir kümmern uns darum.\n\nGruß\nPetra"
    )


def test_trailing_quote_without_attribution_is_dropped() -> None:
    assert strip_quotes("Yes, please.\n\n> Shall we renew?\n> Support\n") == "Yes, please."


@pytest.mark.parametrize(
    "text",
    [
        "Hallo,\nAm Montag schrieb ich Ihnen bereits:\nder Drucker geht nicht.",
        "On Monday you wrote:\nthat it works. It does not.",
        "Please forward to\nTo: all staff\nDate: Friday\nthat the server reboots.",
        "Thanks, that helped.\nBest regards, and a line below stays too.",
        "- step one\n- step two\n--verbose did not help",
    ],
)
def test_own_words_that_look_like_headers_are_kept(text: str) -> None:
    assert strip_quotes(text) == text


def test_signature_after_delimiter_is_dropped() -> None:
    assert strip_quotes("Works now.\n\n-- \nAnna Berg\nACME GmbH\n") == "Works now."


def test_mobile_signature_is_dropped() -> None:
    assert strip_quotes("Passt.\n\nVon meinem iPad gesendet\n") == "Passt."
    assert strip_quotes("Fine.\n\nSent from my iPhone") == "Fine."


def test_german_original_message_marker() -> None:
    text = "Erledigt.\n\n-----Ursprüngliche Nachricht-----\nVon: a@b.de\nBetreff: x\n\nalt"
    assert strip_quotes(text) == "Erledigt."


def test_inline_answers_stay_and_the_quoted_lines_between_them_go() -> None:
    text = (
        "See my answers below.\n\nOn 11/2/26 4:45 PM, Support wrote:\n"
        "> Which version?\n\n4.2\n\n> Which system?\n\nOnly production.\n\n> Kind regards\n"
    )
    assert strip_quotes(text) == "See my answers below.\n\n4.2\n\nOnly production."


def test_long_header_like_lines_take_little_time() -> None:
    # The header patterns backtrack quadratically on such lines; they must not be searched.
    text = "On" + " a" * 50_000 + "\n" + ("Am" + " schrieb" * 30 + "\n") * 2_000
    started = time.monotonic()
    assert strip_quotes(text) == text.strip()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Thanks!\n\n\tFrom: Support\n\tSent: Monday\n\tTo: Anna\n\nold text", "Thanks!"),
        ("Danke.\n\n> > **Von:** Support\n> > **Gesendet:** Montag\n> > alt", "Danke."),
        ("OK.\n\n----- original message -----\nold", "OK."),
        ("Fine.\n\nOn Monday, Support <support@example.com>\nwrote:\n> old", "Fine."),
        ("Gut.\n\nAM 3.11. SCHRIEB Support:\n> alt", "Gut."),
        ("Just one field line.\nSubject: printer\n\nnothing quoted", None),
    ],
)
def test_header_variants(text: str, kept: str | None) -> None:
    assert strip_quotes(text) == (text if kept is None else kept)


@pytest.mark.parametrize(
    "line",
    [
        "a:",  # every line a possible attribution's end
        "From: a@b.example",  # one header block as long as the mail
        "Von: x\nAn: y",
        "On 1 x <a@b.example> wrote:",
        "x <a@b.example>:\n> q",
        "wrote: wrote: wrote:",
        "----- Original Message -----",
        "Sent from my iPhone",
        "Am 1 schrieb x <",
    ],
)
def test_header_like_lines_in_bulk_take_little_time(line: str) -> None:
    # 200 KB of lines that each look like part of a quote header: each line is looked at
    # a bounded number of times.
    text = "Hello\n\n" + (line + "\n") * (200_000 // (len(line) + 1))
    started = time.monotonic()
    assert strip_quotes(text).startswith("Hello")
    assert time.monotonic() - started < 5
