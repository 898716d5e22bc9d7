"""The ticket filter options `tickets list` and `export` share, and the filter they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mailgate.cli.exits import EX_DATAERR, EX_USAGE
from mailgate.cli.lazy import LazyModule

if TYPE_CHECKING:
    from mailgate.reports import views
else:
    views = LazyModule("mailgate.reports.views")


def ticket_filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options `tickets list` and `export` share; values are checked by
    views.make_filter so that a bad one is one line naming the option (exit 64)."""
    options = [
        click.option(
            "--status",
            multiple=True,
            help="open, working, hold, delivered, closed; repeat or separate by commas",
        ),
        click.option(
            "--assignee",
            help="agent (address or name, as #assign takes it; also as further agent), "
            "or `none` for unassigned tickets",
        ),
        click.option("--category", help="category name (any case)"),
        click.option("--customer", help="organisation name"),
        click.option("--priority", help="A, B or C"),
        click.option("--type", "type_", help="bug, enhancement, suggestion, help"),
        click.option("--billable/--not-billable", default=None),
        click.option("--created-from", metavar="YYYY-MM-DD", help="created on or after"),
        click.option("--created-to", metavar="YYYY-MM-DD", help="created on or before"),
        click.option("--updated-from", metavar="YYYY-MM-DD", help="updated on or after"),
        click.option("--updated-to", metavar="YYYY-MM-DD", help="updated on or before"),
        click.option("--waiting", metavar="us|customer", help="who is to act next (not closed)"),
        click.option("--text", metavar="QUERY", help="tickets `mailgate search QUERY` finds"),
        click.option("--sla-breached", is_flag=True, help="first-response target missed"),
        click.option(
            "--sort",
            default="number",
            show_default=True,
            help="number, created, updated, priority, last-action",
        ),
        click.option("--desc", is_flag=True, help="sort descending"),
        click.option("--limit", metavar="N", default=None, help="at most N tickets"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def ticket_filter(session: Any, raw: dict[str, Any], zone: str) -> views.TicketFilter:
    """The filter from the options; raises views.FilterError for a bad or unknown value.
    `zone`: the desk's, whose days a --text query's after:/before: name."""
    flt = views.make_filter(**{("type" if k == "type_" else k): v for k, v in raw.items()})
    return views.checked(session, flt, zone)


def filter_status(exc: views.FilterError) -> int:
    # An unknown organisation or agent is bad data; a malformed value is bad usage.
    return EX_DATAERR if exc.option in ("--customer", "--assignee") else EX_USAGE
