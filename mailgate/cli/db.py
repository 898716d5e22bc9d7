"""`mailgate db`: the database schema brought up to date."""

from __future__ import annotations

import click

from mailgate.cli.shared import State, pass_state


@click.group("db")
def db_group() -> None:
    """The database: schema, backup and restore."""


@db_group.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Bring the database schema up to date."""
    ctx = state.build_context(state.config, migrate=False)
    try:
        click.echo(f"database at revision {ctx.store.upgrade()}")
    finally:
        ctx.store.dispose()
