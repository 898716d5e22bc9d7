"""`mailgate jobs`: the jobs the daemon schedules, read from the configuration."""

from __future__ import annotations

import click

from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json


@click.group("jobs")
def jobs_group() -> None:
    """The jobs `mailgate run` schedules."""


@jobs_group.command("list")
@FORMAT
@pass_state
def jobs_list(state: State, fmt: str) -> None:
    """Name, schedule and purpose of every scheduled job (reads the configuration, needs no
    database)."""
    from mailgate.reports.tables import print_jobs
    from mailgate.service import jobs

    rows = jobs.describe(jobs.jobs_for(state.config))
    print_json(rows) if fmt == "json" else print_jobs(out, rows)
