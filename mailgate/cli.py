"""Sub-commands: parse arguments, call the application, print; no logic of its own."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailgate import cli_backup, exits
from mailgate.config import Config, load
from mailgate.exits import (
    EX_CANTCREAT,
    EX_DATAERR,
    EX_INTERRUPTED,
    EX_NOINPUT,
    EX_OK,
    EX_USAGE,
)
from mailgate.intake.reading import Withheld, read_message
from mailgate.lazy import LazyModule
from mailgate.terminal import plain_console

if TYPE_CHECKING:
    from mailgate import (
        agents,
        app,
        importer,
        models,
        outbox,
        pipeline,
        received,
        tables,
        tags,
        views,
    )
    from mailgate.context import Context
    from mailgate.intake import files as intake_files
    from mailgate.intake.files import Ingested
else:
    # Loaded by the commands that use them: `--help`, `--version` and shell completion need
    # neither the ORM nor the mail libraries, and answer without loading them.
    _LAZY = "agents app importer models outbox pipeline received tables tags views"
    agents, app, importer, models, outbox, pipeline, received, tables, tags, views = (
        LazyModule(f"mailgate.{name}") for name in _LAZY.split()
    )
    intake_files = LazyModule("mailgate.intake.files")

out = plain_console()
if not out.is_terminal:
    # Piped into grep or a file: wide enough that a row stays on one line.
    out = plain_console(width=200)
err = plain_console(stderr=True)

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts",
)


def build_context(config: Config, migrate: bool = True, read_only: bool = False) -> Context:
    """The application's context; a name of this module's own, so tests can give it a clock."""
    return app.build_context(config, migrate=migrate, read_only=read_only)


class State:
    """The configuration and context, built on first use so `--help` needs neither."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path

    @cached_property
    def config(self) -> Config:
        return load(self.config_path)

    @cached_property
    def context(self) -> Context:
        return build_context(self.config)

    @cached_property
    def reader(self) -> Context:
        """For the commands that only read: never creates or migrates a database."""
        return build_context(self.config, read_only=True)

    def close(self) -> None:
        for name in ("context", "reader"):
            if name in self.__dict__:
                self.__dict__[name].store.dispose()


pass_state = click.make_pass_decorator(State)


def say_error(message: str) -> None:
    """One plain line on stderr: no markup, no wrapping, so scripts and logs can read it."""
    click.echo(message, err=True)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A bar on stderr for long work; silent when stderr is not a terminal."""
    from rich.progress import Progress

    with Progress(console=err, transient=True, disable=not err.is_terminal or total < 2) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailgate", message="%(prog)s %(version)s")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="configuration file (else $MAILGATE_CONFIG, else ./mailgate.toml, "
    "else the embedded default)",
)
@click.pass_context
def cli(click_ctx: click.Context, config_path: str | None) -> None:
    """mailgate: support mail in, tickets out, every message accounted for."""
    state = State(config_path)
    click_ctx.obj = state
    click_ctx.call_on_close(state.close)


@cli.command()
@pass_state
def run(state: State) -> int:
    """Run the daemon in the foreground: SMTP intake, processing and outbound mail."""
    from mailgate.daemon import run as run_daemon

    return run_daemon(state.config)


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--deliver/--no-deliver",
    default=True,
    show_default=True,
    help="send the mail the messages caused (acknowledgements) right away",
)
@click.option(
    "--sender",
    default="",
    metavar="ADDRESS",
    help="envelope sender (Postfix pipe: ${sender}); empty for a bounce",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="ADDRESS",
    help="envelope recipient (Postfix pipe: ${original_recipient}); repeatable",
)
@pass_state
def ingest(
    state: State,
    files: tuple[str, ...],
    deliver: bool,
    sender: str,
    recipients: tuple[str, ...],
) -> int:
    """Process messages from FILES (or - for standard input) to their outcome."""
    ctx, status = state.context, EX_OK
    sender = sender.strip("<>")
    # Postfix writes MAILER-DAEMON for the null sender unless null_sender= is set: no address.
    envelope = intake_files.Envelope(
        sender if "@" in sender else "", [r.strip("<>") for r in recipients if r.strip("<>")]
    )
    with progress_bar(len(files), "ingesting") as advance:
        read = partial(_read_message, limit=ctx.config.smtp.max_message_size)
        batches = intake_files.in_batches(files, read)
        for results in intake_files.ingest(ctx, batches, envelope=envelope):
            for result in results:
                advance()
                if result.accepted is None:
                    status = EX_NOINPUT  # said by _read_message
                    continue
                click.echo(f"{result.name}: {_described(ctx, result)}")
    if deliver:
        asyncio.run(outbox.deliver_due(ctx, app.build_transport(ctx.config)))
    return status


def _read_message(name: str, limit: int) -> bytes | Withheld | None:
    try:
        return read_message(name, limit)
    except OSError as exc:
        say_error(f"mailgate: {name}: cannot read: {exc.strerror or exc}")
        return None


def _described(ctx: Context, result: Ingested) -> str:
    if result.outcome is not None:
        return result.outcome.describe()
    assert result.accepted is not None, "only stored messages are described"
    with ctx.store.session() as session:
        row = session.get(models.Intake, result.accepted.intake_id)
        state = (
            f"{row.status}: {row.reason}" if row and row.reason else (row.status if row else "?")
        )
    return f"duplicate of stored message {result.accepted.intake_id} ({state})"


# tickets ---------------------------------------------------------------------------------


@cli.group()
def tickets() -> None:
    """List and show tickets."""


def ticket_filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options `tickets list` and `export` share; values are checked by
    views.make_filter so that a bad one is one line naming the option (exit 64)."""
    options = [
        click.option(
            "--status",
            multiple=True,
            help="open, working, hold, delivered, closed; repeat or separate by commas",
        ),
        click.option(
            "--assignee",
            help="agent (address or name, as #assign takes it; also as further agent), "
            "or `none` for unassigned tickets",
        ),
        click.option("--category", help="category name (any case)"),
        click.option("--customer", help="organisation name"),
        click.option("--priority", help="A, B or C"),
        click.option("--type", "type_", help="bug, enhancement, suggestion, help"),
        click.option("--billable/--not-billable", default=None),
        click.option("--created-from", metavar="YYYY-MM-DD", help="created on or after"),
        click.option("--created-to", metavar="YYYY-MM-DD", help="created on or before"),
        click.option("--updated-from", metavar="YYYY-MM-DD", help="updated on or after"),
        click.option("--updated-to", metavar="YYYY-MM-DD", help="updated on or before"),
        click.option("--waiting", metavar="us|customer", help="who is to act next (not closed)"),
        click.option(
            "--text", metavar="WORD", help="subject or a reference number contains WORD (any case)"
        ),
        click.option("--sla-breached", is_flag=True, help="first-response target missed"),
        click.option(
            "--sort",
            default="number",
            show_default=True,
            help="number, created, updated, priority, last-action",
        ),
        click.option("--desc", is_flag=True, help="sort descending"),
        click.option("--limit", metavar="N", default=None, help="at most N tickets"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _ticket_filter(session: Any, raw: dict[str, Any]) -> views.TicketFilter:
    """The filter from the options; raises views.FilterError for a bad or unknown value."""
    flt = views.make_filter(**{("type" if k == "type_" else k): v for k, v in raw.items()})
    return views.checked(session, flt)


def _filter_status(exc: views.FilterError) -> int:
    # An unknown organisation or agent is bad data; a malformed value is bad usage.
    return EX_DATAERR if exc.option in ("--customer", "--assignee") else EX_USAGE


@tickets.command("list")
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
            flt = _ticket_filter(session, filters)
        except views.FilterError as exc:
            say_error(f"mailgate: {exc}")
            return _filter_status(exc)
        rows = views.ticket_rows(session, ctx.config, flt, ctx.clock())
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        views.write_csv(sys.stdout, views.TICKET_CSV_FIELDS, map(views.flat_row, rows))
    else:
        tables.print_tickets(out, rows, ctx.config.tickets.timezone)
    return EX_OK


@tickets.command("show")
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


@tickets.command(
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
    from mailgate import lifecycle, timebook
    from mailgate.tables import print_ticket_time

    if amount is None and (note or agent_name or billable is not None):
        say_error("mailgate: --billable, --free, --note and --agent need an AMOUNT")
        return EX_USAGE
    if amount is not None and billable is None:
        say_error("mailgate: say --billable or --free: no default, a wrong guess bills wrongly")
        return EX_USAGE
    ctx = state.context
    prefix = ctx.config.tickets.prefix
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


# stats and export ------------------------------------------------------------------------


@cli.command("stats")
@click.option("--days", default="7", show_default=True, help="days in the window, today included")
@FORMAT
@pass_state
def stats_command(state: State, days: str, fmt: str) -> int:
    """Tickets by category and status, opened per day, response times, SLA, backlog."""
    from mailgate import stats

    if not days.isdigit() or not 1 <= int(days) <= 366:
        say_error(f"mailgate: --days: {days!r} is not a number of days from 1 to 366")
        return EX_USAGE
    ctx = state.reader
    with ctx.store.session() as session:
        data = stats.collect(session, ctx.config, ctx.clock(), int(days))
    print_json(data) if fmt == "json" else stats.print_stats(out, data)
    return EX_OK


@cli.command("export")
@ticket_filter_options
@click.option("--format", "fmt", default=None, help="xlsx or csv (default: from the file name)")
@click.option("--output", "-o", default=None, help="the file to write")
@click.option("--articles", is_flag=True, help="csv: write the articles instead of the tickets")
@pass_state
def export_command(
    state: State, fmt: str | None, output: str | None, articles: bool, **filters: Any
) -> int:
    """Tickets (and their articles' metadata) to .xlsx or .csv, with the filters of list."""
    from mailgate import export

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
            flt = _ticket_filter(session, filters)
        except views.FilterError as exc:
            say_error(f"mailgate: {exc}")
            return _filter_status(exc)
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


# quarantine ------------------------------------------------------------------------------


@cli.group()
def quarantine() -> None:
    """Messages that could not be processed, with the reason."""


@quarantine.command("list")
@FORMAT
@pass_state
def quarantine_list(state: State, fmt: str) -> None:
    """Quarantined messages."""
    with state.reader.store.session() as session:
        rows = views.intake_rows(session, models.QUARANTINED)
    fields = ("id", "reason", "received_at", "size", "from", "subject")
    if fmt == "json":
        print_json([{k: row[k] for k in fields} for row in rows])
    else:
        tables.print_intake(out, rows, state.config.tickets.timezone)


@quarantine.command("show")
@click.argument("intake_id", type=int)
@FORMAT
@pass_state
def quarantine_show(state: State, intake_id: int, fmt: str) -> int:
    """One stored message: its reason and headers."""
    with state.reader.store.session() as session:
        row = session.get(models.Intake, intake_id)
        if row is None:
            say_error(f"mailgate: no stored message {intake_id}")
            return EX_DATAERR
        data = views.intake_dict(session, row, with_headers=True)
    if fmt == "json":
        print_json(data)
    else:
        tables.print_stored(out, data, state.config.tickets.timezone)
    return EX_OK


@quarantine.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="every quarantined message")
@pass_state
def quarantine_retry(state: State, ids: tuple[int, ...], retry_all: bool) -> int:
    """Process quarantined messages again (after a fix)."""
    if not ids and not retry_all:
        say_error("mailgate: name message ids, or --all")
        return EX_USAGE
    ctx = state.context
    for outcome in pipeline.retry(ctx, list(ids) or None):
        click.echo(f"{outcome.intake_id}: {outcome.describe()}")
    asyncio.run(outbox.deliver_due(ctx, app.build_transport(ctx.config)))
    return EX_OK


@quarantine.command("release")
@click.argument("intake_id", type=int)
@click.option("--from", "from_addr", default=None, help="customer address, if it has none")
@click.option("--as-customer", is_flag=True, help="answer it like a new request (ack, staff)")
@pass_state
def quarantine_release(
    state: State, intake_id: int, from_addr: str | None, as_customer: bool
) -> int:
    """Open a ticket from a quarantined message."""
    ctx = state.context
    try:
        outcome = pipeline.release(ctx, intake_id, from_addr, as_customer)
    except pipeline.OperatorError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{intake_id}: released as ticket {outcome.cid}")
    if as_customer:
        asyncio.run(outbox.deliver_due(ctx, app.build_transport(ctx.config)))
    return EX_OK


@quarantine.command("drop")
@click.argument("intake_id", type=int)
@click.option("--reason", required=True, help="why; recorded with the message")
@pass_state
def quarantine_drop(state: State, intake_id: int, reason: str) -> int:
    """Mark a quarantined message ignored (its bytes stay stored)."""
    try:
        outcome = pipeline.drop(state.context, intake_id, reason)
    except pipeline.OperatorError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{intake_id}: {outcome.describe()}")
    return EX_OK


# outbox ----------------------------------------------------------------------------------


@cli.group("outbox")
def outbox_group() -> None:
    """Outgoing mail: queued, sent, failed."""


@outbox_group.command("list")
@click.option("--status", type=click.Choice(["queued", "sent", "failed"]))
@FORMAT
@pass_state
def outbox_list(state: State, status: str | None, fmt: str) -> None:
    """Outgoing mail, oldest first."""
    with state.reader.store.session() as session:
        rows = views.outbox_rows(session, status)
    print_json(rows) if fmt == "json" else tables.print_outbox(out, rows)


@outbox_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@pass_state
def outbox_retry(state: State, ids: tuple[int, ...]) -> None:
    """Queue failed mail again (all, or the given ids), then send what is due."""
    ctx = state.context
    count = outbox.retry_failed(ctx.store, ctx.clock(), list(ids) or None)
    click.echo(f"requeued {count}")
    _flush(ctx)


@outbox_group.command("flush")
@pass_state
def outbox_flush(state: State) -> None:
    """Send everything that is due now."""
    _flush(state.context)


def _flush(ctx: Context) -> None:
    counts = asyncio.run(outbox.deliver_due(ctx, app.build_transport(ctx.config)))
    click.echo(", ".join(f"{name} {n}" for name, n in counts.items()))


# agents and customers --------------------------------------------------------------------


@cli.group("agents")
def agents_group() -> None:
    """Support staff."""


@agents_group.command("add")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--language", default=None, help="e.g. de or en")
@click.option(
    "--notify/--no-notify",
    default=True,
    show_default=True,
    help="whether the agent receives staff notifications",
)
@click.option(
    "--signature-file",
    default=None,
    help="the agent's signature (text or HTML), cut from their answers",
)
@pass_state
def agents_add(
    state: State,
    email: str,
    name: str,
    language: str | None,
    notify: bool,
    signature_file: str | None,
) -> int:
    """Add an agent."""
    ctx = state.context
    try:
        signature = agents.read_signature(signature_file) if signature_file else None
        with ctx.store.session() as session:
            agent = agents.add_agent(session, email, name, language, ctx.clock(), notify, signature)
    except agents.AgentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"added agent {agent.email}")
    return EX_OK


@agents_group.command("signature")
@click.argument("email")
@click.option("--file", "path", default=None, help="register this signature (text or HTML)")
@click.option("--clear", is_flag=True, help="forget it: learn it from the answers again")
@pass_state
def agents_signature(state: State, email: str, path: str | None, clear: bool) -> int:
    """Show, register or clear the signature cut from an agent's answers."""
    if path and clear:
        say_error("mailgate: give either --file or --clear")
        return EX_USAGE
    ctx = state.context
    try:
        signature = agents.read_signature(path) if path else None
        with ctx.store.session() as session:
            if path or clear:
                agent = agents.set_signature(session, email, signature)
                said = f"{'registered' if path else 'cleared'} the signature of {agent.email}"
            else:
                kind, text = agents.signature_of(agents.existing_agent(session, email))
                said = f"{kind}:\n{text}" if text else "no signature registered or learned yet"
    except agents.AgentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(said)
    return EX_OK


@agents_group.command("list")
@FORMAT
@pass_state
def agents_list(state: State, fmt: str) -> None:
    """All agents."""
    with state.reader.store.session() as session:
        rows = [
            {
                "email": a.email,
                "name": a.name,
                "language": a.language,
                "notify": a.notify,
                "active": a.active,
            }
            for a in agents.list_agents(session)
        ]
    print_json(rows) if fmt == "json" else tables.print_agents(out, rows)


@cli.group("customers")
def customers_group() -> None:
    """Customer organisations and contacts."""


@customers_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="let rows claim public mail providers' domains")
@pass_state
def customers_import(state: State, csv_file: str, force: bool) -> int:
    """Import organisations and contacts from CSV (organisation, contact name, email, domain,
    responsible agent, language; UTF-8 or Windows-1252, `;`, `,` or tab separated)."""
    ctx = state.context
    try:
        rows = importer.read_rows(Path(csv_file).read_bytes())
        with ctx.store.session() as session, progress_bar(len(rows.rows), "importing") as tick:
            report = importer.import_rows(
                session, rows, ctx.config.customers, ctx.clock(), force, tick
            )
    except importer.CsvImportError as exc:
        say_error(f"mailgate: {csv_file}: {exc}")
        return EX_DATAERR
    for line in report.lines():
        click.echo(line)
    for problem in report.errors:
        say_error(f"mailgate: {csv_file}: {problem}")
    return EX_DATAERR if report.errors else EX_OK


@customers_group.command("list")
@FORMAT
@pass_state
def customers_list(state: State, fmt: str) -> None:
    """Organisations: kind, claimed domains, contacts, responsible agent, support hours."""
    from mailgate import directory
    from mailgate.customer_tables import print_organisations

    with state.reader.store.session() as session:
        rows = directory.organisations(session)
    print_json(rows) if fmt == "json" else print_organisations(out, rows)


@customers_group.command("show")
@click.argument("organisation")
@FORMAT
@pass_state
def customers_show(state: State, organisation: str, fmt: str) -> int:
    """One organisation with its contacts (failing and opted-out flags, open tickets)."""
    from mailgate import customers, directory
    from mailgate.customer_tables import print_organisation

    try:
        with state.reader.store.session() as session:
            data = directory.organisation(session, organisation)
    except customers.ContingentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    print_json(data) if fmt == "json" else print_organisation(out, data)
    return EX_OK


@customers_group.command("claim")
@click.argument("organisation")
@click.argument("domain")
@click.option("--force", is_flag=True, help="claim a public mail provider's domain all the same")
@pass_state
def customers_claim(state: State, organisation: str, domain: str, force: bool) -> int:
    """Let the company ORGANISATION (made if there is none) claim DOMAIN: unknown senders
    from it become its contacts and their colleagues."""
    from mailgate import claims

    ctx = state.context
    try:
        with ctx.store.session() as session:
            org = claims.claim(
                session, organisation, domain, ctx.config.customers, ctx.clock(), force
            )
            name = org.name
    except claims.ClaimError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{domain.strip().lower()} claimed by {name}")
    return EX_OK


@customers_group.command("unclaim")
@click.argument("domain")
@pass_state
def customers_unclaim(state: State, domain: str) -> int:
    """Take back a domain claim; the contacts it brought in stay where they are."""
    from mailgate import claims

    try:
        with state.context.store.session() as session:
            org = claims.unclaim(session, domain)
            name = org.name if org else "?"
    except claims.ClaimError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{domain.strip().lower()} no longer claimed by {name}")
    return EX_OK


@customers_group.command("move")
@click.argument("address")
@click.argument("organisation")
@pass_state
def customers_move(state: State, address: str, organisation: str) -> int:
    """Put the contact ADDRESS in the company ORGANISATION (made if there is none)."""
    from mailgate import claims

    ctx = state.context
    try:
        with ctx.store.session() as session:
            moved = claims.move(session, address, organisation, ctx.clock())
            said = f"{moved.contact.email} moved to {moved.organisation.name}"
            said += f" with {moved.tickets} tickets" if moved.tickets else ""
    except claims.ClaimError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(said)
    return EX_OK


@customers_group.command("clear-failing")
@click.argument("address")
@pass_state
def customers_clear_failing(state: State, address: str) -> int:
    """Let ADDRESS take mail again after a bounce marked it failing (exit 65: no contact)."""
    from mailgate import failing

    ctx = state.context
    try:
        with ctx.store.session() as session:
            email, bounced = failing.clear_by_staff(session, address, ctx.clock())
            when = failing.describe(session, ctx, bounced) if bounced else ""
    except failing.UnknownAddress as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(
        f"{email}: cleared{f' ({when})' if when else ''}" if bounced else f"{email}: not failing"
    )
    return EX_OK


# time and support hours ---------------------------------------------------------------------


@customers_group.command(
    "contingent",
    # "-2h" is an amount, not the options -2 and -h: no -h help and no unknown-option errors.
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
@click.argument("organisation")
@click.argument("amount", required=False)
@click.option("--note", default="", help="what the amount is, e.g. the package bought")
@FORMAT
@pass_state
def customers_contingent(
    state: State, organisation: str, amount: str | None, note: str, fmt: str
) -> int:
    """Add support time to ORGANISATION (+10h, 90m, 1h30; -2h corrects), or with no AMOUNT
    show its history; then what is bought, used by billable time, and left."""
    from mailgate import customers
    from mailgate.tables import print_contingent, print_contingent_line

    if note and amount is None:
        say_error("mailgate: --note needs an AMOUNT to describe")
        return EX_USAGE
    ctx = state.context
    try:
        minutes = customers.parse_amount(amount) if amount is not None else None
        with ctx.store.session() as session:
            org = customers.find_organisation(session, organisation)
            added = None
            if minutes is not None:
                added = customers.add_contingent(session, org, minutes, note, "cli", ctx.clock())
            data = customers.contingent_view(session, org, ctx.config.tickets.timezone, added)
    except customers.ContingentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    if fmt == "json":
        print_json(data)
    elif added is not None:
        sign = "+" if added.minutes > 0 else "-"
        hours, rest = divmod(abs(added.minutes), 60)
        noted = f" ({added.note})" if added.note else ""
        click.echo(f"{data['organisation']}: {sign}{hours}:{rest:02d} recorded{noted}")
        print_contingent_line(out, data)
    else:
        print_contingent(out, data)
    return EX_OK


@cli.group("report")
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
    help="xlsx: de or en (default: the customer's contacts' language, else the default)",
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
    from mailgate import customers, report
    from mailgate.tables import print_time_report

    if fmt == "table" and output:
        say_error("mailgate: --output is for --format json, csv or xlsx")
        return EX_USAGE
    if language is not None and language.lower() not in ("de", "en"):
        say_error(f"mailgate: --language: {language!r} is not one of de, en")
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
        from mailgate.sheets import time_workbook

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


# scheduled jobs ----------------------------------------------------------------------------


@cli.group("jobs")
def jobs_group() -> None:
    """The jobs `mailgate run` schedules."""


@jobs_group.command("list")
@FORMAT
@pass_state
def jobs_list(state: State, fmt: str) -> None:
    """Name, schedule and purpose of every scheduled job (reads the configuration, needs no
    database)."""
    from rich.table import Table

    from mailgate import jobs  # APScheduler is loaded only where jobs are used

    rows = jobs.describe(jobs.jobs_for(state.config))
    if fmt == "json":
        print_json(rows)
        return
    table = Table("name", "schedule", "what it does", header_style="bold")
    for row in rows:
        table.add_row(row["name"], row["schedule"], row["what"])
    out.print(table)


# config and database ---------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """The configuration."""


@config_group.command("check")
@pass_state
def config_check(state: State) -> None:
    """Load the configuration, reach the database and the templates; say what is wrong."""
    cfg = state.config
    ctx = state.context
    ctx.renderer.preload()  # every template of every language, as a reload checks them
    ctx.renderer.render("acknowledgement", cfg.tickets.default_language, _sample_context())
    click.echo(f"configuration ok: {cfg.source}")


def _sample_context() -> dict[str, object]:
    return {
        "ticket": {"cid": "CID-1", "number": 1, "subject": "test", "status": "open"},
        "contact": {"name": "Test", "email": "test@example.com"},
        "support_address": "support@example.com",
        "reply_hint": "[CID-1]",
        "org_name": None,
    }


@cli.group("db")
def db_group() -> None:
    """The database: schema, backup and restore."""


@db_group.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Bring the database schema up to date."""
    ctx = build_context(state.config, migrate=False)
    try:
        click.echo(f"database at revision {ctx.store.upgrade()}")
    finally:
        ctx.store.dispose()


db_group.add_command(cli_backup.backup_command)
db_group.add_command(cli_backup.restore_command)


# Files mailgate writes hold customers' mail (database, raw messages, attachments, sent
# mail): for the service's user and group only, whatever umask the caller had.
UMASK = 0o027


def main() -> None:
    """The console script."""
    os.umask(UMASK)
    sys.exit(run_cli(sys.argv[1:]))


def run_cli(argv: list[str]) -> int:
    """One command: one line and a sysexits status for every failure, no tracebacks."""
    message = ""
    try:
        status = cli.main(argv, prog_name="mailgate", standalone_mode=False)
    except click.exceptions.Abort:
        status = EX_INTERRUPTED
    except click.ClickException as exc:
        exc.show()  # the usage line with the error, said once
        status = EX_USAGE
    except Exception as exc:
        status, message = exits.judged(exc)
    status = status if isinstance(status, int) else EX_OK
    if exits.delivers_for_mta(argv):
        status, message = exits.for_mta(status, message)
    if message:
        say_error(f"mailgate: {message}")
    return status
