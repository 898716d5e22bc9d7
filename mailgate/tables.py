"""Terminal output for people: rich tables and a ticket's colour-coded history."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# As the support desk in seed 001 shows them: high priority red, medium yellow.
PRIORITY_STYLE = {"A": "bold red", "B": "yellow", "C": "dim"}
# Customer replies red, staff answers in the default colour, internal comments green.
DIRECTION_STYLE = {"customer": "red", "staff": "default", "internal": "green", "system": "dim"}


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else ""


def priority_flag(priority: str) -> Text:
    return Text(f"⚑ {priority}", style=PRIORITY_STYLE.get(priority, ""))


def last_action(row: dict[str, Any]) -> str:
    action = row["last_action"]
    return f"{action['by']} {_when(action['at'])}"


def print_tickets(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(show_lines=False, header_style="bold")
    for column in (
        "ticket",
        "prio",
        "$",
        "status",
        "subject",
        "customer",
        "assignee",
        "last action",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["cid"],
            priority_flag(row["priority"]),
            "$" if row["billable"] else "",
            row["status"],
            row["subject"],
            row["customer"] or "",
            row["assignee"] or "",
            last_action(row),
        )
    console.print(table)
    console.print(f"{len(rows)} ticket{'s' if len(rows) != 1 else ''}")


def print_ticket(console: Console, data: dict[str, Any]) -> None:
    head = Text(f"{data['cid']} ", style="bold")
    head.append(data["subject"])
    console.print(head)
    console.print(
        Text.assemble(
            priority_flag(data["priority"]),
            f"  {data['status']}",
            "  $ billable" if data["billable"] else "",
            f"  customer {data['customer']}  requester {data['requester']}",
            f"  assignee {data['assignee'] or '-'}  last action {last_action(data)}",
        )
    )
    for article in data["articles"]:
        style = DIRECTION_STYLE.get(article["direction"], "")
        note = f" ({article['note']})" if article["note"] else ""
        console.print()
        console.print(
            Text(
                f"── {article['direction']} {article['from']} "
                f"{_when(article['date'] or article['created_at'])}{note}",
                style=f"bold {style}",
            )
        )
        console.print(Text(article["text"].rstrip(), style=style))
        for file in article["attachments"]:
            console.print(
                Text(
                    f"  📎 {file['filename']} ({file['content_type']}, {file['size']} bytes)",
                    style="dim",
                )
            )


def _simple(console: Console, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    table = Table(header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def print_intake(console: Console, rows: list[dict[str, Any]]) -> None:
    _simple(console, rows, ("id", "received_at", "from", "subject", "size", "reason"))


def print_outbox(console: Console, rows: list[dict[str, Any]]) -> None:
    _simple(console, rows, ("id", "status", "attempts", "template", "to", "subject", "last_error"))


def print_agents(console: Console, rows: list[dict[str, Any]]) -> None:
    _simple(console, rows, ("email", "name", "language", "active"))
