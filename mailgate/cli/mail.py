"""The commands that take mail in: `run` (the daemon) and `ingest` (files and MTA pipes)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_NOINPUT, EX_OK
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import State, pass_state, progress_bar, say_error
from mailgate.intake.reading import Withheld, read_message

if TYPE_CHECKING:
    from mailgate.outbound import outbox
    from mailgate.service import ingest as intake_files
    from mailgate.service import parts
else:
    # Loaded by the command: `--help` needs neither the ORM nor the mail libraries.
    parts = LazyModule("mailgate.service.parts")
    intake_files = LazyModule("mailgate.service.ingest")
    outbox = LazyModule("mailgate.outbound.outbox")


@click.command()
@pass_state
def run(state: State) -> int:
    """Run the daemon in the foreground: SMTP intake, processing and outbound mail."""
    from mailgate.service.app import run as run_daemon
    from mailgate.web.server import web_parts

    return run_daemon(state.config, web_parts(state.config))


@click.command()
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
    envelope = intake_files.Envelope.from_pipe(sender, recipients)
    with progress_bar(len(files), "ingesting") as advance:
        read = partial(_read_message, limit=ctx.config.smtp.max_message_size)
        batches = intake_files.in_batches(files, read)
        for results in intake_files.ingest(ctx, batches, envelope=envelope):
            for result in results:
                advance()
                if result.accepted is None:
                    status = EX_NOINPUT  # said by _read_message
                    continue
                click.echo(f"{result.name}: {intake_files.described(ctx, result)}")
    if deliver:
        asyncio.run(outbox.deliver_due(ctx, parts.build_transport(ctx.config)))
    return status


def _read_message(name: str, limit: int) -> bytes | Withheld | None:
    try:
        return read_message(name, limit)
    except OSError as exc:
        say_error(f"mailgate: {name}: cannot read: {exc.strerror or exc}")
        return None
