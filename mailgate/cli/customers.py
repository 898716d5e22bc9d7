"""`mailgate customers`: organisations and contacts, domain claims, and support contingents."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_DATAERR, EX_OK, EX_USAGE
from mailgate.cli.lazy import LazyModule
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json, progress_bar, say_error

if TYPE_CHECKING:
    from mailgate.desk import importer
else:
    # Loaded by the command: `--help` needs neither the ORM nor the mail libraries.
    importer = LazyModule("mailgate.desk.importer")


@click.group("customers")
def customers_group() -> None:
    """Customer organisations and contacts."""


@customers_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="let rows claim public mail providers' domains")
@pass_state
def customers_import(state: State, csv_file: str, force: bool) -> int:
    """Import organisations and contacts from CSV (organisation, contact name, email, domain,
    responsible agent, language; UTF-8 or Windows-1252, `;`, `,` or tab separated)."""
    ctx = state.context
    try:
        rows = importer.read_rows(Path(csv_file).read_bytes())
        with ctx.store.session() as session, progress_bar(len(rows.rows), "importing") as tick:
            report = importer.import_rows(
                session, rows, ctx.config.customers, ctx.clock(), force, tick
            )
    except importer.CsvImportError as exc:
        say_error(f"mailgate: {csv_file}: {exc}")
        return EX_DATAERR
    for line in report.lines():
        click.echo(line)
    for problem in report.errors:
        say_error(f"mailgate: {csv_file}: {problem}")
    return EX_DATAERR if report.errors else EX_OK


@customers_group.command("list")
@FORMAT
@pass_state
def customers_list(state: State, fmt: str) -> None:
    """Organisations: kind, claimed domains, contacts, responsible agent, support hours."""
    from mailgate.desk import directory
    from mailgate.reports.customer_tables import print_organisations

    with state.reader.store.session() as session:
        rows = directory.organisations(session)
    print_json(rows) if fmt == "json" else print_organisations(out, rows)


@customers_group.command("show")
@click.argument("organisation")
@FORMAT
@pass_state
def customers_show(state: State, organisation: str, fmt: str) -> int:
    """One organisation with its contacts (failing and opted-out flags, open tickets)."""
    from mailgate.desk import customers, directory
    from mailgate.reports.customer_tables import print_organisation

    try:
        with state.reader.store.session() as session:
            data = directory.organisation(session, organisation)
    except customers.ContingentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    print_json(data) if fmt == "json" else print_organisation(out, data)
    return EX_OK


@customers_group.command("claim")
@click.argument("organisation")
@click.argument("domain")
@click.option("--force", is_flag=True, help="claim a public mail provider's domain all the same")
@pass_state
def customers_claim(state: State, organisation: str, domain: str, force: bool) -> int:
    """Let the company ORGANISATION (made if there is none) claim DOMAIN: unknown senders
    from it become its contacts and their colleagues."""
    from mailgate.desk import claims

    ctx = state.context
    try:
        with ctx.store.session() as session:
            org = claims.claim(
                session, organisation, domain, ctx.config.customers, ctx.clock(), force
            )
            name = org.name
    except claims.ClaimError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{domain.strip().lower()} claimed by {name}")
    return EX_OK


@customers_group.command("unclaim")
@click.argument("domain")
@pass_state
def customers_unclaim(state: State, domain: str) -> int:
    """Take back a domain claim; the contacts it brought in stay where they are."""
    from mailgate.desk import claims

    try:
        with state.context.store.session() as session:
            org = claims.unclaim(session, domain)
            name = org.name if org else "?"
    except claims.ClaimError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(f"{domain.strip().lower()} no longer claimed by {name}")
    return EX_OK


@customers_group.command("move")
@click.argument("address")
@click.argument("organisation")
@pass_state
def customers_move(state: State, address: str, organisation: str) -> int:
    """Put the contact ADDRESS in the company ORGANISATION (made if there is none)."""
    from mailgate.desk import claims

    ctx = state.context
    try:
        with ctx.store.session() as session:
            moved = claims.move(session, address, organisation, ctx.clock())
            said = f"{moved.contact.email} moved to {moved.organisation.name}"
            said += f" with {moved.tickets} tickets" if moved.tickets else ""
    except claims.ClaimError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(said)
    return EX_OK


@customers_group.command("clear-failing")
@click.argument("address")
@pass_state
def customers_clear_failing(state: State, address: str) -> int:
    """Let ADDRESS take mail again after a bounce marked it failing (exit 65: no contact)."""
    from mailgate.outbound import failing

    ctx = state.context
    try:
        with ctx.store.session() as session:
            email, bounced = failing.clear_by_staff(session, address, ctx.clock())
            when = failing.describe(session, ctx, bounced) if bounced else ""
    except failing.UnknownAddress as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    click.echo(
        f"{email}: cleared{f' ({when})' if when else ''}" if bounced else f"{email}: not failing"
    )
    return EX_OK


@customers_group.command("sign-out")
@click.argument("address")
@pass_state
def customers_sign_out(state: State, address: str) -> int:
    """Revoke the web desk links in ADDRESS's mail and end their sessions (exit 65: no
    contact)."""
    from mailgate.desk import customers, web_access

    ctx = state.context
    with ctx.store.session() as session:
        contact = customers.contact_by_email(session, address.strip().lower())
        if contact is None:
            say_error(f"mailgate: no contact {address.strip().lower()}")
            return EX_DATAERR
        links, sessions = web_access.sign_out_everywhere(session, contact, ctx.clock())
    click.echo(f"{contact.email}: {links} links revoked, {sessions} sessions ended")
    return EX_OK


# time and support hours ---------------------------------------------------------------------


@customers_group.command(
    "contingent",
    # "-2h" is an amount, not the options -2 and -h: no -h help and no unknown-option errors.
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
@click.argument("organisation")
@click.argument("amount", required=False)
@click.option("--note", default="", help="what the amount is, e.g. the package bought")
@FORMAT
@pass_state
def customers_contingent(
    state: State, organisation: str, amount: str | None, note: str, fmt: str
) -> int:
    """Add support time to ORGANISATION (+10h, 90m, 1h30; -2h corrects), or with no AMOUNT
    show its history; then what is bought, used by billable time, and left."""
    from mailgate.desk import customers
    from mailgate.reports.tables import (
        contingent_recorded,
        print_contingent,
        print_contingent_line,
    )

    if note and amount is None:
        say_error("mailgate: --note needs an AMOUNT to describe")
        return EX_USAGE
    ctx = state.context
    try:
        minutes = customers.parse_amount(amount) if amount is not None else None
        with ctx.store.session() as session:
            org = customers.find_organisation(session, organisation)
            added = None
            if minutes is not None:
                added = customers.add_contingent(session, org, minutes, note, "cli", ctx.clock())
            data = customers.contingent_view(session, org, ctx.config.tickets.timezone, added)
    except customers.ContingentError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    if fmt == "json":
        print_json(data)
    elif added is not None:
        click.echo(contingent_recorded(data["organisation"], added.minutes, added.note))
        print_contingent_line(out, data)
    else:
        print_contingent(out, data)
    return EX_OK
