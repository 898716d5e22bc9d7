"""`mailgate api-token`: the JSON API's bearer tokens, made, listed and revoked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_DATAERR, EX_OK
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, pass_state, print_json, say_error

if TYPE_CHECKING:
    from mailgate.desk import agents, api_tokens
else:
    # Loaded by the commands: `--help` needs neither the ORM nor the mail libraries.
    agents = LazyModule("mailgate.desk.agents")
    api_tokens = LazyModule("mailgate.desk.api_tokens")


@click.group("api-token")
def api_token_group() -> None:
    """Bearer tokens of the JSON API ([web] listen)."""


@api_token_group.command("add")
@click.argument("name")
@click.option("--agent", "agent", default=None, help="what it writes on tickets is this agent's")
@pass_state
def api_token_add(state: State, name: str, agent: str | None) -> int:
    """Make a token for an integration; it is printed once, only its hash is kept."""
    ctx = state.context
    try:
        with ctx.store.session() as session:
            token, _ = api_tokens.add_token(session, name, agent, ctx.clock())
    except (api_tokens.TokenError, agents.AgentError) as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(token)
    return EX_OK


@api_token_group.command("list")
@FORMAT
@pass_state
def api_token_list(state: State, fmt: str) -> int:
    """The tokens by name, with their agent and when each was last used."""
    with state.reader.store.session() as session:
        rows = api_tokens.token_rows(session)
    if fmt == "json":
        print_json(rows)
        return EX_OK
    for row in rows:
        state_word = "revoked" if row["revoked"] else f"last used {row['last_used_at'] or 'never'}"
        click.echo(f"{row['name']}\t{row['agent'] or '-'}\t{state_word}")
    return EX_OK


@api_token_group.command("revoke")
@click.argument("name")
@pass_state
def api_token_revoke(state: State, name: str) -> int:
    """Revoke a token: every request with it is refused from now on."""
    ctx = state.context
    try:
        with ctx.store.session() as session:
            api_tokens.revoke_token(session, name, ctx.clock())
    except api_tokens.TokenError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"revoked token {name}")
    return EX_OK
