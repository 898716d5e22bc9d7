"""Sub-commands: parse arguments, call the application, print; no logic of its own.

The root group is here; each command group has its module (cli/tickets.py, ...), registered
below with one line."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from mailgate.cli import exits
from mailgate.cli.agents import agents_group
from mailgate.cli.api_tokens import api_token_group
from mailgate.cli.backup import backup_command, restore_command
from mailgate.cli.config import config_group
from mailgate.cli.customers import customers_group
from mailgate.cli.db import db_group
from mailgate.cli.exits import EX_INTERRUPTED, EX_OK, EX_USAGE
from mailgate.cli.jobs import jobs_group
from mailgate.cli.lazy import LazyModule
from mailgate.cli.mail import ingest, run
from mailgate.cli.oauth import oauth_group
from mailgate.cli.outbox import outbox_group
from mailgate.cli.quarantine import quarantine_group
from mailgate.cli.reports import export_command, report_group, stats_command
from mailgate.cli.retention import customers_forget, retention_group
from mailgate.cli.search import search_command
from mailgate.cli.shared import State, say_error
from mailgate.cli.tickets import tickets_group
from mailgate.config import Config

if TYPE_CHECKING:
    from mailgate.outbound.context import Context
    from mailgate.service import parts
else:
    # Loaded by the commands that need a context: `--help`, `--version` and shell completion
    # need neither the ORM nor the mail libraries, and answer without loading them. The
    # parts, not the daemon's module (service.app), which brings the SMTP server and the
    # scheduler: a fifth of the time of `tickets list` or of an `ingest` Postfix runs.
    parts = LazyModule("mailgate.service.parts")


def build_context(config: Config, migrate: bool = True, read_only: bool = False) -> Context:
    """The application's context; a name of this module's own, so tests can give it a clock."""
    return parts.build_context(config, migrate=migrate, read_only=read_only)


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
    # build_context looked up at each call: a test's replacement of it is the one used.
    state = State(config_path, lambda config, **kw: build_context(config, **kw))
    click_ctx.obj = state
    click_ctx.call_on_close(state.close)


cli.add_command(run)
cli.add_command(ingest)
cli.add_command(tickets_group)
cli.add_command(stats_command)
cli.add_command(export_command)
cli.add_command(quarantine_group)
cli.add_command(outbox_group)
cli.add_command(agents_group)
cli.add_command(api_token_group)
cli.add_command(customers_group)
cli.add_command(report_group)
cli.add_command(jobs_group)
cli.add_command(config_group)
cli.add_command(db_group)
db_group.add_command(backup_command)
db_group.add_command(restore_command)
cli.add_command(oauth_group)
cli.add_command(retention_group)
customers_group.add_command(customers_forget)
cli.add_command(search_command)

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
