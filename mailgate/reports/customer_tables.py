"""Terminal tables of customers. Names come from mail: printed as plain text, never markup."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _plain(value: object) -> Text:
    return Text("" if value is None else str(value))


def _hours(row: dict[str, Any]) -> str:
    return f"{row['hours_used']} of {row['hours_total']}, {row['hours_left']} left"


def print_organisations(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(header_style="bold")
    for column in ("organisation", "kind", "domains", "contacts", "agent", "support hours"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            _plain(row["name"]),
            row["kind"],
            _plain(", ".join(row["domains"])),
            str(row["contacts"]),
            _plain(row["responsible_agent"]),
            _hours(row) if row["hours_total"] != "0:00" else "",
        )
    console.print(table)


def print_organisation(console: Console, data: dict[str, Any]) -> None:
    """An organisation's facts, then its contacts with their flags."""
    console.print(Text(f"{data['name']} ({data['kind']})", style="bold"))
    console.print(Text(f"domains: {', '.join(data['domains']) or '-'}"))
    console.print(Text(f"responsible agent: {data['responsible_agent'] or '-'}"))
    console.print(f"support hours: {_hours(data)}")
    table = Table(header_style="bold")
    for column in ("contact", "name", "language", "open tickets", "flags"):
        table.add_column(column, overflow="fold")
    for contact in data["contacts"]:
        flags = [f for f in ("failing", "opted_out") if contact[f]]
        table.add_row(
            _plain(contact["email"]),
            _plain(contact["name"]),
            _plain(contact["language"]),
            str(contact["open_tickets"]),
            Text(" ".join(f.replace("_", "-") for f in flags), style="red" if flags else ""),
        )
    console.print(table)
