"""`mailgate quarantine`: the messages that could not be processed, retried, released or dropped."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_DATAERR, EX_OK, EX_USAGE
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json, say_error

if TYPE_CHECKING:
    from mailgate.flows import pipeline
    from mailgate.outbound import outbox
    from mailgate.reports import tables, views
    from mailgate.service import parts
    from mailgate.store import models
else:
    # Loaded by the commands: `--help` needs neither the ORM nor the mail libraries.
    _LAZY = "service.parts store.models outbound.outbox flows.pipeline reports.tables reports.views"
    parts, models, outbox, pipeline, tables, views = (
        LazyModule(f"mailgate.{name}") for name in _LAZY.split()
    )


@click.group("quarantine")
def quarantine_group() -> None:
    """Messages that could not be processed, with the reason."""


@quarantine_group.command("list")
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


@quarantine_group.command("show")
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


@quarantine_group.command("retry")
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
    asyncio.run(outbox.deliver_due(ctx, parts.build_transport(ctx.config)))
    return EX_OK


@quarantine_group.command("release")
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
        asyncio.run(outbox.deliver_due(ctx, parts.build_transport(ctx.config)))
    return EX_OK


@quarantine_group.command("drop")
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
