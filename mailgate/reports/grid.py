"""A table of many rows, drawn line by line in the frame rich's tables have.

rich's Table measures and renders every cell as an object of its own: a list of 3,400
tickets took 6 s to print, nearly all of it there. Here each column's width is measured
once from the cells' text, a row is one line of text with its cells' styles, and the
console prints all lines as one text: the same frame, in a fraction of the time. When the
table would not fit the console, the widest columns are cut to one width and a cell wider
than its column is wrapped onto more lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.style import Style
from rich.text import Span, Text

# rich's box.HEAVY_HEAD, the frame of its tables by default.
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_UNDER_HEAD = ("┡", "━", "╇", "┩")
_ROW = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")
_PADDING = 1  # a space either side of a cell's text


# A Text for a cell in a style of its own (the whole cell: styles of stretches within it are
# not drawn).
Cell = str | Text


def print_grid(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[Cell]], header_style: str
) -> None:
    """The headers and rows as a framed table that fits the console's width."""
    natural = [
        max([cell_len(header), *(_width(_plain(row[i])) for row in rows)])
        for i, header in enumerate(headers)
    ]
    widths = fitted(natural, console.width - (len(headers) * (2 * _PADDING + 1) + 1))
    lines = _Lines(styled=console.color_system is not None)
    lines.rule(_TOP, widths)
    lines.row([Text(h, style=header_style) for h in headers], widths, _HEAD, bottom=True)
    lines.rule(_UNDER_HEAD, widths)
    for row in rows:
        lines.row(row, widths, _ROW)
    lines.rule(_BOTTOM, widths)
    console.print(lines.text(), crop=False, soft_wrap=True)


def fitted(widths: Sequence[int], room: int) -> list[int]:
    """The widths, the widest cut down to one level until they fit `room` (never below
    one)."""
    if sum(widths) <= room:
        return list(widths)
    level = max(widths)
    while level > 1 and sum(min(w, level) for w in widths) > room:
        level -= 1
    return [min(w, level) for w in widths]


class _Lines:
    """The table's text as one string and the styles of its stretches: one Text made at
    the end costs a fraction of appending to one cell by cell."""

    def __init__(self, styled: bool) -> None:
        self.styled = styled  # a console without colours: no styles to carry
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def add(self, text: str, style: str | Style = "") -> None:
        if style and text and self.styled:
            self.spans.append(Span(self.length, self.length + len(text), style))
        self.parts.append(text)
        self.length += len(text)

    def rule(self, edges: tuple[str, str, str, str], widths: Sequence[int]) -> None:
        left, line, cross, right = edges
        self.add(left + cross.join(line * (w + 2 * _PADDING) for w in widths) + right + "\n")

    def row(
        self,
        cells: Sequence[Cell],
        widths: Sequence[int],
        edges: tuple[str, str, str],
        bottom: bool = False,
    ) -> None:
        """One row: as many lines as its most wrapped cell needs; a short cell at the top
        (a heading at the bottom, as rich sets them). The padding in the cell's style, as
        rich draws it (a heading's bold, say)."""
        left, between, right = edges
        parts = [_wrapped(_plain(c), width) for c, width in zip(cells, widths, strict=True)]
        height = max(len(p) for p in parts)
        if bottom:
            parts = [[""] * (height - len(p)) + p for p in parts]
        for line in range(height):
            self.add(left)
            for column, cell in enumerate(cells):
                if column:
                    self.add(between)
                part = parts[column]
                piece = part[line] if line < len(part) else ""
                pad = " " * (widths[column] - cell_len(piece) + _PADDING)
                style = cell.style if isinstance(cell, Text) else ""
                self.add(f" {piece}{pad}", style)
            self.add(right + "\n")

    def text(self) -> Text:
        return Text("".join(self.parts).rstrip("\n"), spans=self.spans, end="\n")


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _width(text: str) -> int:
    return max(cell_len(line) for line in _paragraphs(text))


def _paragraphs(text: str) -> list[str]:
    """A cell's own lines (a tab as a space: its width depends on where it stands)."""
    return text.replace("\t", " ").split("\n")


def _wrapped(text: str, width: int) -> list[str]:
    """A cell's text as the lines of its column: broken at spaces, a word longer than the
    column folded (a wide character counts two cells)."""
    if "\n" not in text and "\t" not in text and cell_len(text) <= width:
        return [text]
    lines: list[str] = []
    for paragraph in _paragraphs(text):
        lines.extend(_broken(paragraph, width))
    return lines


def _broken(text: str, width: int) -> list[str]:
    if cell_len(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:
            if cell_len(line + char) > width and line:
                lines.append(line)
                line = ""
            line += char
    lines.append(line)
    return lines
