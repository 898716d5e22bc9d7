"""`mailgate db backup DIR` and `db restore DIR`: parse, call backup/restore, print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailgate.cli.exits import EX_CANTCREAT, EX_OK

if TYPE_CHECKING:
    from mailgate.cli.shared import State
    from mailgate.store.backup_files import BackupError

DIRECTORY = click.Path(path_type=Path)


@click.command("backup", short_help="A consistent copy of the desk into DIR.")
@click.argument("directory", type=DIRECTORY, metavar="DIR")
@click.option(
    "--files-only",
    is_flag=True,
    help="PostgreSQL: the attachments and the key, to keep beside a pg_dump",
)
@click.pass_obj
def backup_command(state: State, directory: Path, files_only: bool) -> int:
    """Back the desk up into DIR, a new or empty directory, while mailgate runs.

    The database (one snapshot), the attachments it names, the secret key and a manifest
    with checksums. On PostgreSQL, run pg_dump first, then this with --files-only."""
    from mailgate.cli.shared import progress_bar
    from mailgate.store.backup import make_backup
    from mailgate.store.backup_files import BackupError

    try:
        made = make_backup(state.config, directory, progress_bar, files_only)
    except BackupError as exc:
        return _refused("backup", exc)
    except OSError as exc:
        return _cannot("backup", exc)
    counts = made.counts
    what = "the files" if made.database == "postgresql" else "the database"
    click.echo(
        f"backed up {what}: {counts.get('ticket', 0)} tickets, {counts.get('article', 0)} "
        f"articles, {made.files} files ({_size(made.size)}) to {directory} "
        f"in {made.seconds:.1f} s"
    )
    return EX_OK


@click.command("restore", short_help="Check a backup, restore it into an empty desk.")
@click.argument("directory", type=DIRECTORY, metavar="DIR")
@click.pass_obj
def restore_command(state: State, directory: Path) -> int:
    """Check the backup in DIR, then restore it into an empty desk.

    Every file is checked against the manifest first; the data directory must be empty and
    the database must not exist yet."""
    from mailgate.cli.shared import progress_bar
    from mailgate.store.backup_files import BackupError
    from mailgate.store.restore import restore

    try:
        done = restore(state.config, directory, progress_bar)
    except BackupError as exc:
        return _refused("restore", exc)
    except OSError as exc:
        return _cannot("restore", exc)
    counts = done.counts
    where = f"{done.database} and {done.data_dir}" if done.database else str(done.data_dir)
    click.echo(
        f"restored {counts.get('ticket', 0)} tickets, {counts.get('article', 0)} articles, "
        f"{done.blobs} attachment files ({_size(done.size)}) from {directory} into {where} "
        f"in {done.seconds:.1f} s"
    )
    if done.database is None:
        click.echo(
            "the database is not in this backup: pg_restore its dump (README, section "
            "Backups and restore)"
        )
    return EX_OK


def _refused(command: str, exc: BackupError) -> int:
    click.echo(f"mailgate: {command}: {exc}", err=True)
    for line in exc.details:
        click.echo(f"  {line}", err=True)
    return exc.status


def _cannot(command: str, exc: OSError) -> int:
    """A file that cannot be read or written (a full disk, no permission): named."""
    click.echo(f"mailgate: {command}: {exc.filename or ''}: {exc.strerror or exc}", err=True)
    return EX_CANTCREAT


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return ""
