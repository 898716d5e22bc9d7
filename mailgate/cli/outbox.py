"""`mailgate outbox`: outgoing mail listed, failed mail queued again, due mail sent."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json

if TYPE_CHECKING:
    from mailgate.outbound import outbox
    from mailgate.outbound.context import Context
    from mailgate.reports import tables, views
    from mailgate.service import parts
else:
    # Loaded by the commands: `--help` needs neither the ORM nor the mail libraries.
    parts, outbox, tables, views = (
        LazyModule(f"mailgate.{name}")
        for name in ("service.parts", "outbound.outbox", "reports.tables", "reports.views")
    )


@click.group("outbox")
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
    from mailgate.cli.retention import say_removed_outbox

    say_removed_outbox(ctx, ids)
    count = outbox.retry_failed(ctx.store, ctx.clock(), list(ids) or None)
    click.echo(f"requeued {count}")
    _flush(ctx)


@outbox_group.command("flush")
@pass_state
def outbox_flush(state: State) -> None:
    """Send everything that is due now."""
    _flush(state.context)


def _flush(ctx: Context) -> None:
    counts = asyncio.run(outbox.deliver_due(ctx, parts.build_transport(ctx.config)))
    click.echo(", ".join(f"{name} {n}" for name, n in counts.items()))
