"""`mailgate tickets`: list and show tickets, and book time on them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from mailgate.cli.exits import EX_DATAERR, EX_OK, EX_USAGE
from mailgate.cli.filters import filter_status, ticket_filter, ticket_filter_options
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json, say_error

if TYPE_CHECKING:
    from mailgate.reading import tags
    from mailgate.reports import received, tables, views
else:
    # Loaded by the commands: `--help` needs neither the ORM nor the mail libraries.
    received, tables, tags, views = (
        LazyModule(f"mailgate.{name}")
        for name in ("reports.received", "reports.tables", "reading.tags", "reports.views")
    )


@click.group("tickets")
def tickets_group() -> None:
    """List and show tickets."""


@tickets_group.command("list")
@ticket_filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people, json or csv for scripts",
)
@pass_state
def tickets_list(state: State, fmt: str, **filters: Any) -> int:
    """Tickets, by number unless sorted otherwise, with filters."""
    ctx = state.reader
    with ctx.store.session() as session:
        try:
            flt = ticket_filter(session, filters, ctx.config.tickets.timezone)
        except views.FilterError as exc:
            say_error(f"mailgate: {exc}")
            return filter_status(exc)
        rows = views.ticket_rows(session, ctx.config, flt, ctx.clock())
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        views.write_csv(sys.stdout, views.TICKET_CSV_FIELDS, map(views.flat_row, rows))
    else:
        tables.print_tickets(out, rows, ctx.config.tickets.timezone)
    return EX_OK


@tickets_group.command("show")
@click.argument("cid")
@click.option("--quoted", is_flag=True, help="customer mails in full, quoted text included")
@FORMAT
@pass_state
def tickets_show(state: State, cid: str, fmt: str, quoted: bool) -> int:
    """One ticket with its articles and events (CID-1042, [CID-1042] or 1042)."""
    ctx = state.reader
    with ctx.store.session() as session:
        ticket = views.find_ticket(session, ctx.config.tickets.prefix, cid)
        if ticket is None:
            say_error(f"mailgate: no ticket {cid}")
            return EX_DATAERR
        data = views.ticket_detail(session, ctx.config.tickets.prefix, ticket)
        if quoted or fmt != "json":  # JSON as before, unless asked for
            received.add_received(session, data, quoted)
    print_json(data) if fmt == "json" else tables.print_ticket(
        out, data, ctx.config.tickets.timezone
    )
    return EX_OK


@tickets_group.command(
    "time",
    # "-30m" is a correction, not an option.
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
@click.argument("cid")
@click.argument("amount", required=False)
@click.option("--billable/--free", "billable", default=None, help="the kind of time (required)")
@click.option("--note", default="", help="what was done; required for a correction")
@click.option("--agent", "agent_name", default=None, help="whose time: address or name")
@FORMAT
@pass_state
def tickets_time(
    state: State,
    cid: str,
    amount: str | None,
    billable: bool | None,
    note: str,
    agent_name: str | None,
    fmt: str,
) -> int:
    """Book time on a ticket (90m, 1h30; -30m corrects), or with no AMOUNT list its entries."""
    from mailgate.desk import lifecycle, timebook
    from mailgate.reports.tables import print_ticket_time

    if amount is None and (note or agent_name or billable is not None):
        say_error("mailgate: --billable, --free, --note and --agent need an AMOUNT")
        return EX_USAGE
    if amount is not None and billable is None:
        say_error("mailgate: say --billable or --free: no default, a wrong guess bills wrongly")
        return EX_USAGE
    ctx = state.context
    prefix = ctx.config.tickets.prefix
    # Finding the ticket (reports.views) and booking on it (desk.timebook) live in two
    # layers, so the command puts them together.
    try:
        with ctx.store.session() as session:
            ticket = views.find_ticket(session, prefix, cid)
            if ticket is None:
                raise timebook.TimeRefused(f"no ticket {cid}")
            added = None
            if amount is not None:
                minutes = timebook.parse_booking(amount, note)
                agent = lifecycle.resolve_agent(session, agent_name) if agent_name else None
                added = timebook.book_time(
                    session, ticket, agent, minutes, bool(billable), note, "cli", ctx.clock()
                )
            label = tags.cid(prefix, ticket.number)
            data = timebook.ticket_time(session, ticket, label, ctx.config.tickets.timezone, added)
    except (timebook.TimeRefused, lifecycle.Refused) as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    print_json(data) if fmt == "json" else print_ticket_time(out, data)
    return EX_OK
