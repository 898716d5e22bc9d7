"""The ticket list's table drawn line by line: rich's frame and cells, fitted to the width."""

from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mailgate.reports.grid import Cell, fitted, print_grid
from mailgate.reports.terminal import plain_console

HEADERS = ["ticket", "prio", "$", "status", "subject", "customer"]
ROWS: list[list[Cell]] = [
    ["CID-1000", Text("⚑ A", style="bold red"), "$", "open", "Drucker 打印机 kaputt", "ACME"],
    ["CID-1001", Text("⚑ B", style="yellow"), "", "delivered", "VPN", ""],
    ["CID-1002", Text("⚑ C", style="dim"), "", "hold", "Größe der Postfächer", "Müller & Söhne"],
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def console(width: int, colours: bool = False) -> Console:
    if colours:
        return Console(
            file=io.StringIO(), width=width, force_terminal=True, color_system="standard"
        )
    return plain_console(file=io.StringIO(), width=width)


def by_rich(out: Console, rows: list[list[Cell]]) -> str:
    table = Table(show_lines=False, header_style="bold")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    return out.file.getvalue()  # type: ignore[attr-defined]


def by_grid(out: Console, rows: list[list[Cell]]) -> str:
    print_grid(out, HEADERS, rows, header_style="bold")
    return out.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("colours", [False, True])
def test_a_table_that_fits_looks_as_rich_draws_it(colours: bool) -> None:
    grid, rich = by_grid(console(120, colours), ROWS), by_rich(console(120, colours), ROWS)
    # With colours the escape codes may split differently; what shows is the same.
    assert ANSI.sub("", grid) == ANSI.sub("", rich)
    if colours:
        assert "\x1b[1;31m" in grid and "⚑ A" in grid  # priority A in bold red, as before


def test_a_narrow_console_wraps_cells_and_keeps_every_line_in_the_width() -> None:
    shown = by_grid(console(50), ROWS)
    lines = shown.splitlines()
    assert all(cell_len(line) <= 50 for line in lines)
    assert len({cell_len(line) for line in lines}) == 1  # one frame for all rows
    # Each cell read back down its column, over the lines of its row, is whole.
    body = [line.strip("│").split("│") for line in lines if line.startswith("│")]
    rows: list[list[str]] = []
    for cells in body:
        if cells[0].strip().startswith("CID-"):  # a row's first line: its ticket number
            rows.append([""] * len(cells))
        rows[-1] = [so_far + cell.strip() for so_far, cell in zip(rows[-1], cells, strict=True)]
    expected = [[(c.plain if isinstance(c, Text) else c).replace(" ", "") for c in r] for r in ROWS]
    assert [[cell.replace(" ", "") for cell in row] for row in rows] == expected
    # Headings sit at the bottom of their cell, as in rich's tables.
    assert "┃ ticket ┃" in lines[2] and "┃ ticket ┃" not in lines[1]


def test_a_cell_with_line_breaks_or_tabs_keeps_the_frame() -> None:
    rows: list[list[Cell]] = [["CID-1", Text("⚑ A"), "", "open", "one\ntwo\tthree", "x"]]
    lines = by_grid(console(120), rows).splitlines()
    assert len({cell_len(line) for line in lines}) == 1
    assert any("│ one " in line for line in lines) and any("two three" in line for line in lines)


def test_control_characters_from_mail_are_shown_not_obeyed() -> None:
    rows: list[list[Cell]] = [["CID-1", Text("⚑ A"), "", "open", "evil \x1b[2J subject", "x"]]
    shown = by_grid(console(120), rows)
    assert "\x1b" not in shown and "␛[2J" in shown


def test_widths_are_cut_from_the_widest_down() -> None:
    assert fitted([8, 4, 40, 30], 100) == [8, 4, 40, 30]
    assert fitted([8, 4, 40, 30], 60) == [8, 4, 24, 24]
    assert sum(fitted([8, 4, 40, 30], 60)) <= 60


def test_thousands_of_rows_are_all_listed() -> None:
    rows: list[list[Cell]] = [
        [f"CID-{n}", Text("⚑ B"), "", "open", f"Question {n}", "ACME"] for n in range(3000)
    ]
    shown = by_grid(console(200), rows)
    assert len(set(re.findall(r"CID-\d+", shown))) == 3000
