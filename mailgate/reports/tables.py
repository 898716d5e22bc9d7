"""Terminal output for people: rich tables and a ticket's colour-coded history."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mailgate.moments import aware, hhmm
from mailgate.reports.grid import print_grid

# As the support desk in seed 001 shows them: high priority red, medium yellow.
PRIORITY_STYLE = {"A": "bold red", "B": "yellow", "C": "dim"}
# Customer replies red, staff answers in the default colour, internal comments green.
DIRECTION_STYLE = {"customer": "red", "staff": "default", "internal": "green", "system": "dim"}


def _when(iso: str | None, zone: str) -> str:
    """An ISO moment of the JSON views as the desk reads it: in its time zone, to the minute."""
    if not iso:
        return ""
    return aware(datetime.fromisoformat(iso)).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def priority_flag(priority: str) -> Text:
    return Text(f"⚑ {priority}", style=PRIORITY_STYLE.get(priority, ""))


def last_action(row: dict[str, Any], zone: str) -> str:
    action = row["last_action"]
    return f"{action['by']} {_when(action['at'], zone)}"


def sla_mark(row: dict[str, Any]) -> Text:
    """A red mark for a missed first-response target; rows without `sla` show nothing."""
    target = row.get("sla") or {}
    return Text("⏰ late", style="bold red") if target.get("breached") else Text("")


def print_tickets(console: Console, rows: list[dict[str, Any]], zone: str) -> None:
    """The list, times in the desk's zone (named in the heading); mail-derived text plain.
    Drawn line by line (grid.py): a desk's lists run to thousands of tickets."""
    headers = [
        "ticket",
        "prio",
        "$",
        "status",
        "subject",
        "customer",
        "assignee",
        f"last action ({zone})",
        "sla",
    ]
    cells = [
        [
            row["cid"],
            priority_flag(row["priority"]),
            "$" if row["billable"] else "",
            row["status"],
            row["subject"],
            row["customer"] or "",
            row["assignee"] or "",
            last_action(row, zone),
            sla_mark(row),
        ]
        for row in rows
    ]
    print_grid(console, headers, cells, header_style="bold")
    console.print(f"{len(rows)} ticket{'s' if len(rows) != 1 else ''}")


def _agent(email: str | None, name: str | None) -> str:
    if not email:
        return "-"
    return f"{name} <{email}>" if name else email


def _facts(data: dict[str, Any], zone: str) -> list[tuple[str, str]]:
    """The ticket's fields as (label, value) lines; empty ones are left out."""
    further = ", ".join(_agent(a["email"], a["name"]) for a in data["further_agents"])
    time = data["time"]
    hold = _when(data["hold_until"], zone)[:10] if data["status"] == "hold" else ""
    facts = [
        ("type", data["type"] or "-"),
        ("category", data["category"] or "-"),
        ("customer", data["customer"] or "-"),
        ("requester", data["requester"] or "-"),
        ("assignee", _agent(data["assignee"], data["assignee_name"])),
        ("further agents", further),
        ("time booked", f"{hhmm(time['billable_minutes'])} billable, "
                        f"{hhmm(time['free_minutes'])} free"),
        ("on hold until", hold),
        ("references", "; ".join(data["references"])),
        ("follows", data["linked_ticket"] or ""),
        ("followed by", ", ".join(data["followed_by"])),
        ("created", _when(data["created_at"], zone)),
        ("last action", last_action(data, zone)),
    ]  # fmt: skip
    return [(label, value) for label, value in facts if value]


def print_ticket(console: Console, data: dict[str, Any], zone: str) -> None:
    """Head, fields, the articles colour-coded by author, then the events; times in the
    desk's zone, named once at the top."""
    head = Text(f"{data['cid']} ", style="bold")
    head.append(data["subject"])
    console.print(head)
    console.print(
        Text.assemble(
            priority_flag(data["priority"]),
            f"  {data['status']}",
            "  $ billable" if data["billable"] else "",
            f"  (times in {zone})",
        )
    )
    for label, value in _facts(data, zone):
        console.print(Text.assemble((f"{label + ':':<16}", "dim"), value))
    for article in data["articles"]:
        _print_article(console, article, zone)
    if data["events"]:
        console.print()
        console.print(Text("events", style="bold"))
    for event in data["events"]:
        who = _agent(event["actor"], event["actor_name"])
        line = f"{_when(event['at'], zone)}  {who}  {event['action']}"
        console.print(Text(f"{line}  {event['detail']}" if event["detail"] else line))


def _print_article(console: Console, article: dict[str, Any], zone: str) -> None:
    style = DIRECTION_STYLE.get(article["direction"], "")
    note = f" ({article['note']})" if article["note"] else ""
    console.print()
    console.print(
        Text(
            f"── {article['direction']} {_agent(article['from'], article['from_name'])} "
            f"{_when(article['date'] or article['created_at'], zone)}{note}",
            style=f"bold {style}",
        )
    )
    if "received_removed" in article:  # --quoted, and the mail as it came is gone
        console.print(Text(article["text"].rstrip(), style=style))
        console.print(Text(f"(the mail as received: {article['received_removed']})", style="dim"))
    elif "received_text" in article:  # --quoted: the mail as it came
        console.print(Text(article["received_text"], style=style))
    else:
        console.print(Text(article["text"].rstrip(), style=style))
        if article.get("hidden_lines"):
            hidden = f"({article['hidden_lines']} lines of quoted text or signature hidden"
            console.print(Text(f"{hidden}: show them with --quoted)", style="dim"))
    for file in article["attachments"]:
        console.print(
            Text(
                f"  📎 {file['filename']} ({file['content_type']}, {file['size']} bytes)",
                style="dim",
            )
        )


def _simple(
    console: Console,
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    headings: dict[str, str] | None = None,
) -> None:
    table = Table(header_style="bold")
    for column in columns:
        table.add_column((headings or {}).get(column, column), overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    console.print(table)


def _cell(value: Any) -> Text:
    # Text, never markup: subjects and addresses come from mail ("[red]" stays as written).
    if isinstance(value, list):
        return Text(", ".join(str(v) for v in value))
    return Text("" if value is None else str(value))


def print_intake(console: Console, rows: list[dict[str, Any]], zone: str) -> None:
    local = [{**row, "received_at": _when(row["received_at"], zone)} for row in rows]
    columns = ("id", "received_at", "from", "subject", "size", "reason")
    _simple(console, local, columns, {"received_at": f"received ({zone})"})


def print_stored(console: Console, data: dict[str, Any], zone: str) -> None:
    """One stored message: its state, then its headers as they came."""
    for key in ("id", "status", "reason", "received_at", "source", "size", "attempts"):
        value = str(data[key])
        if key == "received_at":
            value = f"{_when(data[key], zone)} ({zone})"
        console.print(Text.assemble((f"{key}:", "bold"), f" {value}"))
    console.print()
    console.print(Text(data["headers"]))


def print_outbox(console: Console, rows: list[dict[str, Any]]) -> None:
    columns = ("id", "status", "attempts", "template", "to", "subject", "last_error")
    # Only when some mail lost its bytes (retention, erasure): the table stays narrow.
    _simple(console, rows, columns + (("removed",) if any(r["removed"] for r in rows) else ()))


def print_agents(console: Console, rows: list[dict[str, Any]]) -> None:
    _simple(console, rows, ("email", "name", "language", "active"))


def print_jobs(console: Console, rows: list[dict[str, str]]) -> None:
    table = Table("name", "schedule", "what it does", header_style="bold")
    for row in rows:
        table.add_row(row["name"], row["schedule"], row["what"])
    console.print(table)


# --- time and support hours -------------------------------------------------------------------


def _time_cells(row: dict[str, Any]) -> tuple[str, str, str]:
    return (hhmm(row["billable_minutes"]), hhmm(row["free_minutes"]), hhmm(row["minutes"]))


def print_contingent_line(console: Console, status: dict[str, Any]) -> None:
    console.print(
        f"contingent {hhmm(status['total_minutes'])}, used {hhmm(status['used_minutes'])}, "
        f"left {hhmm(status['left_minutes'])}"
    )


def contingent_recorded(organisation: str, minutes: int, note: str) -> str:
    """The line saying an amount was added to (or, negative, taken from) a contingent."""
    sign = "+" if minutes > 0 else "-"
    noted = f" ({note})" if note else ""
    return f"{organisation}: {sign}{hhmm(abs(minutes))} recorded{noted}"


def print_contingent(console: Console, data: dict[str, Any]) -> None:
    """An organisation's packages and corrections, then what is bought, used and left."""
    table = Table(header_style="bold", title=Text(data["organisation"]), title_justify="left")
    for column, justify in (("date", "left"), ("amount", "right"), ("note", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("by")
    for row in data["history"]:
        sign = "+" if row["minutes"] > 0 else ""
        table.add_row(row["date"], f"{sign}{hhmm(row['minutes'])}", row["note"], row["actor"])
    console.print(table)
    print_contingent_line(console, data)


def print_ticket_time(console: Console, data: dict[str, Any]) -> None:
    """A ticket's time entries, corrections marked, then the billable and free totals."""
    table = Table(header_style="bold", title=data["cid"], title_justify="left")
    for column, justify in (("when", "left"), ("agent", "left"), ("kind", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("time", justify="right")
    table.add_column("note", overflow="fold")
    for entry in data["entries"]:
        kind = "billable" if entry["billable"] else "free"
        style = "italic" if entry["correction"] else None
        when = entry["created_at"][:16].replace("T", " ")
        amount = hhmm(entry["minutes"])
        table.add_row(when, entry["agent"], kind, amount, entry["note"], style=style)
    console.print(table)
    console.print(
        f"billable {hhmm(data['billable_minutes'])}, free {hhmm(data['free_minutes'])}, "
        f"total {hhmm(data['minutes'])}"
    )


def print_time_report(console: Console, report: dict[str, Any]) -> None:
    """Per customer: a row per ticket and agent, a bold subtotal per ticket, totals per agent
    and overall, and the contingent at the end of the month."""
    if not report["customers"]:
        console.print(f"no time booked in {report['month']}")
    for block in report["customers"]:
        table = Table(
            header_style="bold",
            title=Text(f"{block['organisation']}: time in {report['month']}"),
            title_justify="left",
        )
        for column in ("ticket", "subject", "status", "agent"):
            table.add_column(column, overflow="fold")
        for column in ("billable", "free", "total"):
            table.add_column(column, justify="right")
        for ticket in block["tickets"]:
            for agent in ticket["agents"]:
                labels = (ticket["cid"], Text(ticket["subject"]), ticket["status"], agent["agent"])
                table.add_row(*labels, *_time_cells(agent))
            for fix in ticket["corrections"]:
                what = Text(
                    f"correction {fix['date']} {fix['agent']}: {fix['note']}", style="italic"
                )
                table.add_row(ticket["cid"], "", "", what, *_time_cells(fix))
            if len(ticket["agents"]) + len(ticket["corrections"]) > 1:
                table.add_row("", "", "", Text("ticket total", style="bold"), *_time_cells(ticket))
            table.add_section()
        for agent in block["agents"]:
            table.add_row("", "", "", Text(f"Σ {agent['agent']}", style="dim"), *_time_cells(agent))
        table.add_row("total", "", "", "", *_time_cells(block["totals"]), style="bold")
        console.print(table)
        print_contingent_line(console, block["contingent"])
        console.print()


def print_hits(console: Console, hits: list[dict[str, Any]], zone: str) -> None:
    """Search results, best first: the ticket, its status and last activity, and the words
    around the match (mail-derived text plain)."""
    table = Table(show_lines=True, header_style="bold")
    for column in ("ticket", "status", f"last activity ({zone})", "subject", "match"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        table.add_row(
            hit["cid"],
            hit["status"],
            _when(hit["last_activity"], zone),
            Text(hit["subject"]),
            Text(hit["snippet"]),
        )
    console.print(table)
    console.print(f"{len(hits)} ticket{'s' if len(hits) != 1 else ''} found")
