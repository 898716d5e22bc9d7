"""`mailgate retention run|log` and `mailgate customers forget`: what is dropped, and when."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from mailgate.cli.exits import EX_DATAERR, EX_OK
from mailgate.cli.shared import FORMAT, State, out, pass_state, print_json, say_error

if TYPE_CHECKING:
    from mailgate.flows.forget import Found
    from mailgate.flows.retention import Removal
    from mailgate.outbound.context import Context


@click.group("retention")
def retention_group() -> None:
    """Dropping the bytes of old mail whose outcome is committed ([retention])."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="list what would be removed; change nothing")
@FORMAT
@pass_state
def retention_run(state: State, dry_run: bool, fmt: str) -> int:
    """Remove now what [retention] says is old enough (the daemon does it on schedule)."""
    from mailgate.flows import retention

    # A dry run only reads: it never creates or migrates a database.
    removal = retention.run(state.reader if dry_run else state.context, dry_run=dry_run)
    if fmt == "json":
        print_json({"dry_run": dry_run, **_removal_dict(removal)})
        return EX_OK
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"raw mail: {verb} {len(removal.raw_mail)} ({removal.raw_bytes} bytes)"
        + _listed(removal.raw_mail)
    )
    click.echo(
        f"outbox: {verb} {len(removal.outbox)} ({removal.outbox_bytes} bytes)"
        + _listed(removal.outbox)
    )
    click.echo(f"sent mail files: {verb} {len(removal.sent_files)} ({removal.sent_bytes} bytes)")
    for name in removal.sent_files:
        click.echo(f"  {name}")
    if not any(getattr(state.config.retention, k) for k in _DAYS):
        click.echo("retention is off: [retention] keeps everything (all days are 0)")
    return EX_OK


_DAYS = ("raw_mail_days", "sent_mail_days", "outbox_days")


def _listed(ids: Sequence[int]) -> str:
    return f": ids {', '.join(map(str, ids))}" if ids else ""


def _removal_dict(removal: Removal) -> dict[str, Any]:
    return {
        "raw_mail": removal.raw_mail,
        "raw_bytes": removal.raw_bytes,
        "outbox": removal.outbox,
        "outbox_bytes": removal.outbox_bytes,
        "sent_files": removal.sent_files,
        "sent_bytes": removal.sent_bytes,
    }


@retention_group.command("log")
@FORMAT
@pass_state
def retention_log(state: State, fmt: str) -> None:
    """Retention runs and forgotten customers: the events of the whole desk."""
    from mailgate.flows import retention
    from mailgate.reports.listing import iso

    with state.reader.store.session() as session:
        rows = [
            {"at": iso(e.created_at), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in retention.desk_events(session)
        ]
    if fmt == "json":
        print_json(rows)
        return
    for row in rows:
        out.print(f"{row['at']}  {row['action']}  {row['detail']}", markup=False)


def say_removed_outbox(ctx: Context, ids: Sequence[int]) -> None:
    """`outbox retry` of mails whose bytes are gone: why they are not queued again."""
    from mailgate.flows import retention

    with ctx.store.session() as session:
        removed = retention.removed_outbox(session, list(ids))
    for outbox_id, (at, by) in sorted(removed.items()):
        click.echo(f"{outbox_id}: not requeued: {retention.removed_note(at, by)}")


@click.command("forget")
@click.argument("address")
@click.option("--yes", is_flag=True, help="erase; without it, only say what would be erased")
@FORMAT
@pass_state
def customers_forget(state: State, address: str, yes: bool, fmt: str) -> int:
    """Erase a customer's personal data on request (GDPR Art. 17); tickets, counts and time
    stay. Without --yes, say what would be erased and change nothing."""
    from mailgate.flows import forget
    from mailgate.search import build

    ctx = state.context if yes else state.reader  # without --yes it only reads
    try:
        if yes:
            found = forget.forget(ctx, address)
            with ctx.store.session() as session:  # the erased words out of the index's file
                build.purge(session.connection())
        else:
            with ctx.store.session() as session:
                found = forget.find(ctx, session, address)
    except forget.ForgetError as exc:
        say_error(f"mailgate: {exc}")
        return EX_DATAERR
    if fmt == "json":
        print_json({"erased": yes, **_found_dict(ctx, found)})
        return EX_OK
    _print_found(ctx, found, yes)
    return EX_OK


def _found_dict(ctx: Context, found: Found) -> dict[str, Any]:
    from mailgate.reading import tags

    prefix = ctx.config.tickets.prefix
    return {
        "contact_id": found.contact_id,
        "placeholder": found.placeholder,
        **found.counts(),
        "tickets": [tags.cid(prefix, n) for n in found.tickets],  # kept: their numbers
    }


def _print_found(ctx: Context, found: Found, erased: bool) -> None:
    data = _found_dict(ctx, found)
    head = "erased" if erased else "would erase"
    click.echo(
        f"{found.address}: {head} contact {found.contact_id}'s name and address "
        f"(now {found.placeholder})"
    )
    click.echo(f"  articles they wrote (text, attachments): {data['articles']}")
    click.echo(f"  attachments: {data['attachments']}")
    click.echo(f"  others' articles to or copying them: {data['articles_addressed']}")
    click.echo(f"  raw mail from them: {data['raw_mail']}")
    click.echo(f"  outgoing mail to them: {data['outbox']}")
    click.echo(f"  sent mail files: {data['sent_files']}")
    click.echo(f"  events naming them: {data['events']}")
    kept = ", ".join(data["tickets"]) or "none"
    click.echo(f"  tickets kept, with their status history and time: {kept}")
    if not erased:
        click.echo("nothing changed: add --yes to erase")
