"""`mailgate stats`, `export` and `report`: figures, spreadsheets and reports for managers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailgate.cli.exits import EX_CANTCREAT, EX_DATAERR, EX_OK, EX_USAGE
from mailgate.cli.filters import filter_status, ticket_filter, ticket_filter_options
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import (
    FORMAT,
    State,
    out,
    pass_state,
    print_json,
    progress_bar,
    say_error,
)

if TYPE_CHECKING:
    from mailgate.reports import views
else:
    # Loaded by the commands: `--help` needs neither the ORM nor the mail libraries.
    views = LazyModule("mailgate.reports.views")

# The languages outbound/sheet_words.py has words for (a test keeps the two in step); named
# here as that module is loaded only by the command that writes the sheet.
SHEET_LANGUAGES = ("de", "en", "fr")


@click.command("stats")
@click.option("--days", default="7", show_default=True, help="days in the window, today included")
@FORMAT
@pass_state
def stats_command(state: State, days: str, fmt: str) -> int:
    """Tickets by category and status, opened per day, response times, SLA, backlog."""
    from mailgate.reports import stats

    if not days.isdigit() or not 1 <= int(days) <= 366:
        say_error(f"mailgate: --days: {days!r} is not a number of days from 1 to 366")
        return EX_USAGE
    ctx = state.reader
    with ctx.store.session() as session:
        data = stats.collect(session, ctx.config, ctx.clock(), int(days))
    print_json(data) if fmt == "json" else stats.print_stats(out, data)
    return EX_OK


@click.command("export")
@ticket_filter_options
@click.option("--format", "fmt", default=None, help="xlsx or csv (default: from the file name)")
@click.option("--output", "-o", default=None, help="the file to write")
@click.option("--articles", is_flag=True, help="csv: write the articles instead of the tickets")
@pass_state
def export_command(
    state: State, fmt: str | None, output: str | None, articles: bool, **filters: Any
) -> int:
    """Tickets (and their articles' metadata) to .xlsx or .csv, with the filters of list."""
    from mailgate.reports import export

    if not output:
        say_error("mailgate: --output: name the file to write")
        return EX_USAGE
    path = Path(output)
    fmt = (fmt or ("csv" if path.suffix.lower() == ".csv" else "xlsx")).lower()
    if fmt not in ("xlsx", "csv"):
        say_error(f"mailgate: --format: {fmt!r} is not one of xlsx, csv")
        return EX_USAGE
    ctx = state.reader
    with ctx.store.session() as session:
        try:
            flt = ticket_filter(session, filters, ctx.config.tickets.timezone)
        except views.FilterError as exc:
            say_error(f"mailgate: {exc}")
            return filter_status(exc)
        now = ctx.clock()
        total = export.count(session, flt, ctx.config, now)
        try:
            with progress_bar(total, "exporting") as tick:
                counts = export.write_file(session, ctx.config, flt, now, path, fmt, articles, tick)
        except OSError as exc:
            say_error(f"mailgate: {output}: cannot write: {exc.strerror or exc}")
            return EX_CANTCREAT
    what = f"{counts.tickets} tickets"
    if fmt == "xlsx" or articles:
        what += f", {counts.articles} articles"
    click.echo(f"exported {what} to {output}")
    return EX_OK


@click.group("report")
def report_group() -> None:
    """Reports for staff and managers."""


@report_group.command("time")
@click.option(
    "--customer",
    default=None,
    help="organisation name; without it, every organisation with time in the month",
)
@click.option(
    "--month",
    default=None,
    help="YYYY-MM, on the [tickets] timezone calendar (default: the current month)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "xlsx", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="file for json, csv, xlsx (xlsx default: time-ORG-YYYY-MM.xlsx here)",
)
@click.option(
    "--language",
    default=None,
    help="xlsx: de, en or fr (default: the customer's contacts' language, else the default)",
)
@pass_state
def report_time(
    state: State,
    customer: str | None,
    month: str | None,
    fmt: str,
    output: str | None,
    language: str | None,
) -> int:
    """Time booked in a month, by ticket and agent, billable and free, with the contingent."""
    from mailgate.desk import customers
    from mailgate.reports import report
    from mailgate.reports.tables import print_time_report

    if fmt == "table" and output:
        say_error("mailgate: --output is for --format json, csv or xlsx")
        return EX_USAGE
    if language is not None and language.lower() not in SHEET_LANGUAGES:
        say_error(f"mailgate: --language: {language!r} is not one of {', '.join(SHEET_LANGUAGES)}")
        return EX_USAGE
    ctx = state.reader
    zone = ctx.config.tickets.timezone
    try:
        period = (
            report.Month.parse(month, zone) if month else report.Month.containing(ctx.clock(), zone)
        )
    except report.ReportError as exc:
        say_error(f"mailgate: --month: {exc}")
        return EX_USAGE
    try:
        with ctx.store.session() as session:
            org = customers.find_organisation(session, customer) if customer else None
            data = report.time_report(session, ctx.config.tickets.prefix, period, org)
    except customers.ContingentError as exc:
        say_error(f"mailgate: --customer: {exc}")
        return EX_DATAERR
    if fmt == "table":
        print_time_report(out, data)
        return EX_OK
    if fmt == "xlsx":
        from mailgate.outbound.sheets import time_workbook

        target = output or report.default_filename(data, customer)
        default = ctx.config.tickets.default_language
        return _write_report(target, time_workbook(data, default, language and language.lower()))
    if fmt == "json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = report.csv_text(data)
    if output is None:
        click.echo(text, nl=False)
        return EX_OK
    return _write_report(output, text.encode("utf-8"))


def _write_report(target: str, content: bytes) -> int:
    try:
        Path(target).write_bytes(content)
    except OSError as exc:
        say_error(f"mailgate: {target}: cannot write: {exc.strerror or exc}")
        return EX_CANTCREAT
    click.echo(f"wrote {target}")
    return EX_OK
