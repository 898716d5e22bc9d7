"""Booking time by `#time` and `tickets time`: a unit is required, corrections and their limits,
and the time report showing each correction as its own row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from mailgate.outbound.context import Context
from tests.mails import make_mail
from tests.staffdesk import Desk, text_of, to

BOB = "bob@example.com"
SUBJECT = "Re: [CID-1000] Printer broken"
FORMS = "write it like 90m, 1h30, 1:30, 1.5h; -30m corrects"


@pytest.fixture
def desk(ctx: Context, tmp_path: Path) -> Desk:
    """CID-1000 from alice@acme.example; Bob, an English-speaking agent."""
    desk = Desk(ctx, tmp_path)
    desk.agent(BOB, "Bob Builder", "en")
    assert desk.ingest(make_mail()) == "ticket CID-1000"
    desk.new_mail()
    return desk


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def time_events(desk: Desk) -> list[str]:
    return [e["detail"] for e in desk.ticket("CID-1000")["events"] if e["action"] == "time"]


def error_mail_text(desk: Desk) -> str:
    (error,) = [m for m in desk.new_mail() if to(m) == BOB]
    return text_of(error)


def test_a_number_without_a_unit_is_refused_with_the_accepted_forms(desk: Desk) -> None:
    assert (
        desk.staff(BOB, SUBJECT, "#time 2 billable\n\nThe driver is fixed.\n") == "reply CID-1000"
    )
    assert time_events(desk) == []
    assert f'#time: "2" has no unit (2m or 2h?): {FORMS}' in error_mail_text(desk)
    # The contingent's amounts are read by the same rule and worded the same way.
    refused = desk.cli("customers", "contingent", "alice@acme.example", "10")
    assert (refused.returncode, refused.stderr) == (
        65,
        f'mailgate: "10" has no unit (10m or 10h?): {FORMS}\n',
    )
    assert desk.staff(BOB, SUBJECT, "#time 2m billable\n") == "reply CID-1000"
    assert time_events(desk) == ["2 min billable"]


def test_a_correction_by_mail_needs_a_note_and_shows_in_the_report(desk: Desk) -> None:
    desk.staff(BOB, SUBJECT, "#time 1h billable\n\nReinstalled the driver.\n")
    desk.new_mail()
    desk.staff(BOB, SUBJECT, "#time -30m billable\n")
    assert "#time: a correction needs a note saying why" in error_mail_text(desk)
    desk.staff(BOB, SUBJECT, "#time -30m billable booked twice\n")
    assert [m for m in desk.new_mail() if to(m) == BOB] == []
    assert time_events(desk) == [
        "60 min billable",
        "-30 min billable (correction): booked twice",
    ]
    report = desk.json(
        "report", "time", "--month", this_month(), "--customer", "alice@acme.example"
    )
    (ticket,) = report["customers"][0]["tickets"]
    assert [(a["agent"], a["billable_minutes"]) for a in ticket["agents"]] == [(BOB, 60)]
    assert [(c["agent"], c["billable_minutes"], c["note"]) for c in ticket["corrections"]] == [
        (BOB, -30, "booked twice")
    ]
    assert (ticket["billable_minutes"], report["customers"][0]["totals"]["minutes"]) == (30, 30)
    assert report["customers"][0]["contingent"]["used_minutes"] == 30


def test_a_correction_never_takes_more_than_was_booked(desk: Desk) -> None:
    desk.staff(BOB, SUBJECT, "#time 20m free\n")
    # Free time is not billable time: nothing billable to take back.
    desk.staff(BOB, SUBJECT, "#time -10m billable wrong kind\n")
    desk.new_mail()
    desk.staff(BOB, SUBJECT, "#time -30m free too much\n")
    assert (
        "#time -30m free too much: a correction of 0:30 is more than the 0:20 free time "
        "booked by bob@example.com on this ticket"
    ) in error_mail_text(desk)
    assert time_events(desk) == ["20 min free"]


def entries(data: dict[str, Any]) -> list[tuple[str, int, bool, bool, str]]:
    return [
        (e["agent"], e["minutes"], e["billable"], e["correction"], e["note"])
        for e in data["entries"]
    ]


def test_tickets_time_books_corrects_and_lists(desk: Desk, tmp_path: Path) -> None:
    booked = desk.json("tickets", "time", "CID-1000", "1h30", "--billable", "--agent", "bob")
    assert booked["added"] == {"minutes": 90, "billable": True, "note": ""}
    fixed = desk.json(
        "tickets", "time", "CID-1000", "-45m", "--billable", "--agent", BOB, "--note", "typo"
    )
    assert (fixed["billable_minutes"], fixed["free_minutes"]) == (45, 0)
    listed = desk.json("tickets", "time", "CID-1000")
    assert entries(listed) == [(BOB, 90, True, False, ""), (BOB, -45, True, True, "typo")]
    table = desk.cli("tickets", "time", "CID-1000")
    assert "-0:45" in table.stdout and "billable 0:45, free 0:00, total 0:45" in table.stdout

    for args, status, message in (
        (("2", "--free"), 65, f'"2" has no unit (2m or 2h?): {FORMS}'),
        (("-1h", "--billable", "--agent", BOB, "--note", "x"), 65, "more than the 0:45"),
        (("-10m", "--billable", "--agent", BOB), 65, "a correction needs a note"),
        (("30m",), 64, "say --billable or --free"),
        (("30m", "--free", "--agent", "nobody"), 65, 'no active agent is called "nobody"'),
    ):
        refused = desk.cli("tickets", "time", "CID-1000", *args)
        assert refused.returncode == status and message in refused.stderr, refused
    assert desk.cli("tickets", "time", "CID-9999", "1h", "--free").returncode == 65
    assert entries(desk.json("tickets", "time", "CID-1000")) == entries(listed)

    month = this_month()
    out = desk.cli("report", "time", "--month", month, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["agent"], r["billable_minutes"], r["kind"], r["note"]) for r in rows] == [
        (BOB, "90", "booked", ""),
        (BOB, "-45", "correction", "typo"),
    ]
    table = desk.cli("report", "time", "--month", month).stdout
    assert "correction" in table and "typo" in table and "-0:45" in table
    sheet = tmp_path / "time.xlsx"
    desk.cli("report", "time", "--month", month, "--format", "xlsx", "--output", str(sheet))
    cells = [str(c.value) for row in openpyxl.load_workbook(sheet).active.iter_rows() for c in row]
    assert any(c.startswith("Correction ") and c.endswith(": typo") for c in cells)
    assert "-0:45" in cells and "0:45" in cells
