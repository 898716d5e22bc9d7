"""`mailgate agents`: the support staff added, listed, and their signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_DATAERR, EX_OK, EX_USAGE
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json, say_error

if TYPE_CHECKING:
    from mailgate.desk import agents
    from mailgate.reports import tables
else:
    # Loaded by the commands: `--help` needs neither the ORM nor the mail libraries.
    agents = LazyModule("mailgate.desk.agents")
    tables = LazyModule("mailgate.reports.tables")


@click.group("agents")
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


@agents_group.command("deactivate")
@click.argument("email")
@pass_state
def agents_deactivate(state: State, email: str) -> int:
    """Stop an agent: no staff mail, no assignment, no web desk (their sessions end)."""
    return _set_active(state, email, False)


@agents_group.command("activate")
@click.argument("email")
@pass_state
def agents_activate(state: State, email: str) -> int:
    """Let a deactivated agent work again."""
    return _set_active(state, email, True)


def _set_active(state: State, email: str, active: bool) -> int:
    ctx = state.context
    try:
        with ctx.store.session() as session:
            agent = agents.set_active(session, email, active)
    except agents.AgentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{'activated' if active else 'deactivated'} agent {agent.email}")
    return EX_OK


@agents_group.command("list")
@FORMAT
@pass_state
def agents_list(state: State, fmt: str) -> None:
    """All agents."""
    with state.reader.store.session() as session:
        rows = agents.agent_rows(session)
    print_json(rows) if fmt == "json" else tables.print_agents(out, rows)
