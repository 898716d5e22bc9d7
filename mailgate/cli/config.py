"""`mailgate config`: the configuration checked, with the database and templates it names."""

from __future__ import annotations

import click

from mailgate.cli.shared import State, pass_state


@click.group("config")
def config_group() -> None:
    """The configuration."""


@config_group.command("check")
@pass_state
def config_check(state: State) -> None:
    """Load the configuration, reach the database and the templates; say what is wrong."""
    cfg = state.config
    ctx = state.context
    ctx.renderer.check(cfg.tickets.default_language)
    click.echo(f"configuration ok: {cfg.source}")
