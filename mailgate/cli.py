"""Sub-commands: parse arguments, call the application, print; no logic of its own."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress

from mailgate import agents, importer, outbox, pipeline, views
from mailgate.app import build_context, build_transport
from mailgate.config import Config, ConfigError, load
from mailgate.context import Context
from mailgate.intake.spool import accept
from mailgate.models import QUARANTINED, Intake
from mailgate.render import TemplateError
from mailgate.store import SchemaOutdated, StoreUnavailable
from mailgate.tables import print_agents, print_intake, print_outbox, print_ticket, print_tickets

# sysexits(3): what a caller such as Postfix's pipe understands.
EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT = 0, 64, 65, 66
EX_UNAVAILABLE, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 69, 70, 75, 78

out = Console(highlight=False)
if not out.is_terminal:
    # Piped into grep or a file: wide enough that a row stays on one line.
    out = Console(highlight=False, width=200)
err = Console(stderr=True, highlight=False)

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts",
)


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

    def close(self) -> None:
        if "context" in self.__dict__:
            self.context.store.dispose()


pass_state = click.make_pass_decorator(State)


def say_error(message: str) -> None:
    """One plain line on stderr: no markup, no wrapping, so scripts and logs can read it."""
    click.echo(message, err=True)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A bar on stderr for long work; silent when stderr is not a terminal."""
    with Progress(console=err, transient=True, disable=not err.is_terminal or total < 2) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@pass_state
def ingest(state: State, files: tuple[str, ...], deliver: bool) -> int:
    """Process messages from FILES (or - for standard input) to their outcome."""
    ctx, status = state.context, EX_OK
    with progress_bar(len(files), "ingesting") as advance:
        for name in files:
            raw = _read_message(name)
            if raw is None:
                status = EX_NOINPUT
            else:
                click.echo(f"{name}: {_ingest_one(ctx, raw, 'pipe' if name == '-' else 'file')}")
            advance()
    if deliver:
        asyncio.run(outbox.deliver_due(ctx, build_transport(ctx.config)))
    return status


def _read_message(name: str) -> bytes | None:
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        say_error(f"mailgate: {name}: cannot read: {exc.strerror or exc}")
        return None


def _ingest_one(ctx: Context, raw: bytes, source: str) -> str:
    accepted = accept(ctx.store, raw, source, ctx.clock())
    if accepted.duplicate:
        with ctx.store.session() as session:
            earlier = _intake_status(session, accepted.intake_id)
        return f"duplicate of stored message {accepted.intake_id} ({earlier})"
    return pipeline.process(ctx, accepted.intake_id).describe()


def _intake_status(session: Any, intake_id: int) -> str:
    row = session.get(Intake, intake_id)
    return f"{row.status}: {row.reason}" if row and row.reason else (row.status if row else "?")


# tickets ---------------------------------------------------------------------------------


@cli.group()
def tickets() -> None:
    """List and show tickets."""


@tickets.command("list")
@click.option("--status", type=click.Choice(["open", "working", "hold", "delivered", "closed"]))
@click.option("--assignee", help="agent address")
@click.option("--category")
@click.option("--customer", help="organisation name")
@click.option("--priority", type=click.Choice(["A", "B", "C"], case_sensitive=False))
@FORMAT
@pass_state
def tickets_list(state: State, fmt: str, **filters: str | None) -> None:
    """Tickets, oldest first, with filters."""
    ctx = state.context
    with ctx.store.session() as session:
        rows = views.ticket_rows(session, ctx.config.tickets.prefix, views.TicketFilter(**filters))
    print_json(rows) if fmt == "json" else print_tickets(out, rows)


@tickets.command("show")
@click.argument("cid")
@FORMAT
@pass_state
def tickets_show(state: State, cid: str, fmt: str) -> int:
    """One ticket with its articles and events (CID-1042, [CID-1042] or 1042)."""
    ctx = state.context
    with ctx.store.session() as session:
        ticket = views.find_ticket(session, ctx.config.tickets.prefix, cid)
        if ticket is None:
            say_error(f"mailgate: no ticket {cid}")
            return EX_DATAERR
        data = views.ticket_detail(session, ctx.config.tickets.prefix, ticket)
    print_json(data) if fmt == "json" else print_ticket(out, data)
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
    with state.context.store.session() as session:
        rows = views.intake_rows(session, QUARANTINED)
    fields = ("id", "reason", "received_at", "size", "from", "subject")
    if fmt == "json":
        print_json([{k: row[k] for k in fields} for row in rows])
    else:
        print_intake(out, rows)


@quarantine.command("show")
@click.argument("intake_id", type=int)
@FORMAT
@pass_state
def quarantine_show(state: State, intake_id: int, fmt: str) -> int:
    """One stored message: its reason and headers."""
    with state.context.store.session() as session:
        row = session.get(Intake, intake_id)
        if row is None:
            say_error(f"mailgate: no stored message {intake_id}")
            return EX_DATAERR
        data = views.intake_dict(row, with_raw=True)
    if fmt == "json":
        print_json(data)
    else:
        for key in ("id", "status", "reason", "received_at", "source", "size", "attempts"):
            out.print(f"[bold]{key}:[/bold] {data[key]}")
        out.print()
        out.print(data["headers"], markup=False)
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
    asyncio.run(outbox.deliver_due(ctx, build_transport(ctx.config)))
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
        asyncio.run(outbox.deliver_due(ctx, build_transport(ctx.config)))
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
    with state.context.store.session() as session:
        rows = views.outbox_rows(session, status)
    print_json(rows) if fmt == "json" else print_outbox(out, rows)


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
    counts = asyncio.run(outbox.deliver_due(ctx, build_transport(ctx.config)))
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
@pass_state
def agents_add(state: State, email: str, name: str, language: str | None, notify: bool) -> int:
    """Add an agent."""
    ctx = state.context
    try:
        with ctx.store.session() as session:
            agent = agents.add_agent(session, email, name, language, ctx.clock(), notify)
    except agents.AgentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"added agent {agent.email}")
    return EX_OK


@agents_group.command("list")
@FORMAT
@pass_state
def agents_list(state: State, fmt: str) -> None:
    """All agents."""
    with state.context.store.session() as session:
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
    print_json(rows) if fmt == "json" else print_agents(out, rows)


@cli.group("customers")
def customers_group() -> None:
    """Customer organisations and contacts."""


@customers_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@pass_state
def customers_import(state: State, csv_file: str) -> int:
    """Import organisations and contacts from CSV (organisation, contact name, email, domain,
    responsible agent, language)."""
    ctx = state.context
    lines = Path(csv_file).read_text(encoding="utf-8-sig").splitlines(keepends=True)
    try:
        with ctx.store.session() as session, progress_bar(len(lines) - 1, "importing") as tick:
            report = importer.import_csv(session, lines, ctx.clock(), tick)
    except importer.CsvImportError as exc:
        say_error(f"mailgate: {csv_file}: {exc}")
        return EX_DATAERR
    click.echo(
        f"{report.contacts_created} contacts created, {report.contacts_updated} updated, "
        f"{len(report.organisations)} organisations"
    )
    for problem in report.errors:
        say_error(f"mailgate: {csv_file}: {problem}")
    return EX_DATAERR if report.errors else EX_OK


# scheduled jobs ----------------------------------------------------------------------------


@cli.group("jobs")
def jobs_group() -> None:
    """The jobs `mailgate run` schedules."""


@jobs_group.command("list")
@FORMAT
def jobs_list(fmt: str) -> None:
    """Name, schedule and purpose of every scheduled job (needs no database)."""
    from rich.table import Table

    from mailgate import jobs  # APScheduler is loaded only where jobs are used

    rows = jobs.describe()
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
    """The database schema."""


@db_group.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Bring the database schema up to date."""
    ctx = build_context(state.config, migrate=False)
    click.echo(f"database at revision {ctx.store.upgrade()}")


def main() -> None:
    """The console script."""
    sys.exit(run_cli(sys.argv[1:]))


def run_cli(argv: list[str]) -> int:
    """One command: one line and a sysexits status for every failure, no tracebacks."""
    try:
        status = cli.main(argv, prog_name="mailgate", standalone_mode=False)
    except click.exceptions.Abort:
        status = 130
    except click.ClickException as exc:
        exc.show()
        status = EX_USAGE
    except ConfigError as exc:
        say_error(f"mailgate: configuration error: {exc}")
        status = EX_CONFIG
    except TemplateError as exc:
        say_error(f"mailgate: template error: {exc}")
        status = EX_CONFIG
    except SchemaOutdated as exc:
        say_error(f"mailgate: {exc}")
        status = EX_CONFIG
    except StoreUnavailable as exc:
        say_error(f"mailgate: storage unavailable, try again later: {exc}")
        status = EX_TEMPFAIL
    return status if isinstance(status, int) else EX_OK
