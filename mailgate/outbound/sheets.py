"""Spreadsheet attachments (.xlsx) built with openpyxl.

openpyxl is imported when a workbook is built: the ticket list mail (sender_answers) imports
this module, so the daemon, its worker and every command would otherwise carry it (5-6 MB,
40 ms to import) for the occasional customer list or time report."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

from mailgate.moments import hhmm
from mailgate.outbound.sheet_words import translated, words

# The keys callers fill in, in the order the columns appear; headings in sheet_words.
TICKET_COLUMNS: tuple[str, ...] = (
    "cid",
    "subject",
    "status",
    "priority",
    "last_action_by",
    "last_action_at",
)
# Stored values shown in the reader's words.
TRANSLATED = frozenset({"status", "last_action_by"})
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value: object) -> object:
    # Excel has no time zones and openpyxl refuses aware datetimes: store UTC wall time.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if value is None or isinstance(value, int | float | datetime):
        return value
    return str(value)


def tickets_workbook(rows: list[dict], language: str | None, zone: str) -> bytes:
    """One sheet "Tickets": a heading row in the reader's language, then one row per dict
    (keys of TICKET_COLUMNS; times as naive wall clock of `zone`, which the heading names)."""
    from openpyxl import Workbook

    said = words(language)
    book = Workbook()
    sheet = book.active
    sheet.title = "Tickets"
    sheet.append([said[key].format(zone=zone) for key in TICKET_COLUMNS])
    for row in rows:
        sheet.append(
            [
                translated(language, row.get(key)) if key in TRANSLATED else _cell(row.get(key))
                for key in TICKET_COLUMNS
            ]
        )
        for cell in sheet[sheet.max_row]:
            # openpyxl makes any text starting with "=" a formula; a customer's subject is
            # data and must never run as one in the reader's spreadsheet program.
            if cell.data_type == "f":
                cell.data_type = "s"
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDEF", (12, 48, 15, 9, 17, 27), strict=True):
        sheet.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- time report ------------------------------------------------------------------------------

# The keys of the time sheet's headings in sheet_words, in column order.
TIME_HEADINGS = (
    "cid",
    "subject",
    "status",
    "agent",
    "billable_h",
    "free_h",
    "total_h",
    "billable_hmm",
    "free_hmm",
    "total_hmm",
)
HOURS_FORMAT = "0.00"


def _as_text(sheet: Any) -> None:
    # As in tickets_workbook: a subject such as "=HYPERLINK(...)" is text, never a formula.
    for cell in sheet[sheet.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"


def _time_row(sheet: Any, label: list[object], minutes: tuple[int, ...], bold: bool) -> None:
    """Label cells, then each duration as decimal hours (0.00) and again as h:mm text."""
    from openpyxl.styles import Font

    sheet.append([*label, *(m / 60 for m in minutes), *(hhmm(m) for m in minutes)])
    _as_text(sheet)
    row = sheet[sheet.max_row]
    for cell in row[len(label) : len(label) + len(minutes)]:
        cell.number_format = HOURS_FORMAT
    if bold:
        for cell in row:
            cell.font = Font(bold=True)


def _sheet_title(name: str, taken: set[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\ and unique within the book.
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Customer"
    title, n = base, 2
    while title.lower() in taken:
        title = f"{base[: 31 - len(str(n)) - 1]}-{n}"
        n += 1
    taken.add(title.lower())
    return title


def _time_sheet(sheet: Any, block: dict[str, Any], month: str, language: str) -> None:
    from openpyxl.styles import Font

    said = words(language)
    sheet.append([said["title"].format(organisation=block["organisation"], month=month)])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([])
    sheet.append([said[key] for key in TIME_HEADINGS])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for ticket in block["tickets"]:
        for agent in ticket["agents"]:
            who = agent["agent_name"] or agent["agent"]
            _time_row(
                sheet,
                [ticket["cid"], ticket["subject"], translated(language, ticket["status"]), who],
                (agent["billable_minutes"], agent["free_minutes"], agent["minutes"]),
                bold=False,
            )
        for fix in ticket["corrections"]:
            who = fix["agent_name"] or fix["agent"]
            _time_row(
                sheet,
                [ticket["cid"], f"Correction {fix['date']}: {fix['note']}", "", who],
                (fix["billable_minutes"], fix["free_minutes"], fix["minutes"]),
                bold=False,
            )
    totals = block["totals"]
    _time_row(
        sheet,
        [said["total"], "", "", ""],
        (totals["billable_minutes"], totals["free_minutes"], totals["minutes"]),
        bold=True,
    )
    sheet.append([])
    contingent = block["contingent"]
    for label, minutes in (
        (said["bought"], contingent["total_minutes"]),
        (said["used"].format(month=month), contingent["used_minutes"]),
        (said["left"], contingent["left_minutes"]),
    ):
        sheet.append([label, "", "", "", minutes / 60, "", "", hhmm(minutes)])
        sheet.cell(row=sheet.max_row, column=5).number_format = HOURS_FORMAT
    sheet.freeze_panes = "A4"
    for letter, width in zip("ABCDEFGHIJ", (12, 40, 10, 22, 12, 10, 10, 15, 12, 12), strict=True):
        sheet.column_dimensions[letter].width = width


def time_workbook(report: dict[str, Any], default_language: str, language: str | None) -> bytes:
    """A sheet per customer of a time report (`report.time_report`), fit to send to them:
    title, one row per ticket and agent, a totals row, then the contingent. Each sheet is in
    `language` if given, else in the customer's (the block's), else in `default_language`."""
    from openpyxl import Workbook

    book = Workbook()
    taken: set[str] = set()
    blocks = report["customers"] or [
        {
            "organisation": words(language or default_language)["none_booked"],
            "tickets": [],
            "totals": {"billable_minutes": 0, "free_minutes": 0, "minutes": 0},
            "contingent": {"total_minutes": 0, "used_minutes": 0, "left_minutes": 0},
        }
    ]
    for index, block in enumerate(blocks):
        sheet = book.active if index == 0 else book.create_sheet()
        sheet.title = _sheet_title(block["organisation"], taken)
        chosen = language or block.get("language") or default_language
        _time_sheet(sheet, block, report["month"], chosen)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
