"""`mailgate search QUERY`: tickets by what their mail says, best first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_OK, EX_USAGE
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json, say_error

if TYPE_CHECKING:
    from mailgate.reports import tables
    from mailgate.search import engine, query
else:  # `--help` loads neither the ORM nor the database drivers
    engine, query, tables = (
        LazyModule(f"mailgate.{name}")
        for name in ("search.engine", "search.query", "reports.tables")
    )


# Unknown options pass as words: `-printer` excludes a word, it is no option of ours.
@click.command("search", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, required=True)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="at most this many tickets",
)
@FORMAT
@pass_state
def search_command(state: State, words: tuple[str, ...], limit: int, fmt: str) -> int:
    """Tickets whose subject, mail, addresses, attachment names or references match QUERY.

    Words must all match (any case, with or without accents: muller, mueller and Müller
    meet); "a phrase"; prefix* ; -word excludes; from:ADDRESS-OR-DOMAIN, to:, org:NAME,
    ref:NUMBER, file:NAME, cid:1042 or CID-1042, is:open, assignee:AGENT,
    after:YYYY-MM-DD, before:YYYY-MM-DD."""
    ctx = state.reader
    try:
        parsed = query.parse(" ".join(words))
        with ctx.store.session() as session:
            hits = engine.search(
                session, parsed, limit=limit, now=ctx.clock(), zone=ctx.config.tickets.timezone
            )
    except query.QueryError as exc:
        say_error(f"mailgate: search: {exc}")
        return EX_USAGE
    rows = [hit.as_json() for hit in hits]
    if fmt == "json":
        print_json(rows)
    else:
        tables.print_hits(out, rows, ctx.config.tickets.timezone)
    return EX_OK
