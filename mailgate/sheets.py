"""Spreadsheet attachments (.xlsx) built with openpyxl: the one module that imports it."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import Workbook

# (row key, column heading): the keys callers fill in, in the order the columns appear.
TICKET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cid", "Ticket"),
    ("subject", "Subject"),
    ("status", "Status"),
    ("priority", "Priority"),
    ("last_action_by", "Last action by"),
    ("last_action_at", "Last action (UTC)"),
)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value: object) -> object:
    # Excel has no time zones and openpyxl refuses aware datetimes: store UTC wall time.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if value is None or isinstance(value, int | float | datetime):
        return value
    return str(value)


def tickets_workbook(rows: list[dict]) -> bytes:
    """One sheet "Tickets": a heading row, then one row per dict (keys of TICKET_COLUMNS)."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Tickets"
    sheet.append([heading for _, heading in TICKET_COLUMNS])
    for row in rows:
        sheet.append([_cell(row.get(key)) for key, _ in TICKET_COLUMNS])
        for cell in sheet[sheet.max_row]:
            # openpyxl makes any text starting with "=" a formula; a customer's subject is
            # data and must never run as one in the reader's spreadsheet program.
            if cell.data_type == "f":
                cell.data_type = "s"
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDEF", (12, 48, 11, 9, 15, 19), strict=True):
        sheet.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
