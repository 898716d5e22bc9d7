"""What every command shares: the state built on first use, the consoles, and the output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from mailgate.config import Config, load
from mailgate.reports.terminal import plain_console

if TYPE_CHECKING:
    from mailgate.outbound.context import Context

out = plain_console()
if not out.is_terminal:
    # Piped into grep or a file: wide enough that a row stays on one line.
    out = plain_console(width=200)
err = plain_console(stderr=True)

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts",
)


class State:
    """The configuration and context, built on first use so `--help` needs neither.

    `build_context` makes the context from the configuration: the root group hands in
    mailgate.cli.build_context, looked up at each call so that tests can give it a clock."""

    def __init__(self, config_path: str | None, build_context: Callable[..., Context]) -> None:
        self.config_path = config_path
        self.build_context = build_context

    @cached_property
    def config(self) -> Config:
        return load(self.config_path)

    @cached_property
    def context(self) -> Context:
        return self.build_context(self.config)

    @cached_property
    def reader(self) -> Context:
        """For the commands that only read: never creates or migrates a database."""
        return self.build_context(self.config, read_only=True)

    def close(self) -> None:
        for name in ("context", "reader"):
            if name in self.__dict__:
                self.__dict__[name].store.dispose()


pass_state = click.make_pass_decorator(State)


def say_error(message: str) -> None:
    """One plain line on stderr: no markup, no wrapping, so scripts and logs can read it."""
    click.echo(message, err=True)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A bar on stderr for long work; silent when stderr is not a terminal."""
    from rich.progress import Progress

    with Progress(console=err, transient=True, disable=not err.is_terminal or total < 2) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
