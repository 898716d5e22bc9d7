"""Exit statuses (sysexits(3)) and the one each failure earns. `mailgate ingest` is run by an
MTA (Postfix's pipe, procmail, fetchmail) that bounces the mail to its sender on any status but
75: every failure that is ours, not the mail's, exits 75 there, so that the MTA keeps the mail
and tries again once the operator has fixed it."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from mailgate.config import ConfigError

EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT = 0, 64, 65, 66
EX_UNAVAILABLE, EX_SOFTWARE, EX_TEMPFAIL, EX_CONFIG = 69, 70, 75, 78
EX_CANTCREAT = 73  # an output file cannot be written
EX_NOPERM = 77  # a sign-in was declined
EX_INTERRUPTED = 130

# What an MTA may bounce on: the input itself can never succeed (65), or a file named on the
# command line cannot be read (66). Everything else from `ingest` is our trouble.
_THE_INPUTS_FAULT = frozenset({EX_OK, EX_DATAERR, EX_NOINPUT})


def delivers_for_mta(argv: Sequence[str]) -> bool:
    """Whether the command line runs `ingest`, the command MTAs deliver through. Read from
    the arguments themselves: a usage error in them is found before any command runs."""
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--config"):
            next(args, None)
        elif not arg.startswith("-") or arg == "-":
            return arg == "ingest"
    return False


def judged(exc: Exception) -> tuple[int, str]:
    """The status a failure earns, and the one line that says what it was."""
    # Imported here: the command line answers --help without loading the ORM.
    from mailgate.outbound.render import TemplateError
    from mailgate.store.database import SchemaOutdated, StoreUnavailable

    if isinstance(exc, click.ClickException):
        return EX_USAGE, exc.format_message()
    if isinstance(exc, ConfigError):
        return EX_CONFIG, f"configuration error: {exc}"
    if isinstance(exc, TemplateError):
        return EX_CONFIG, f"template error: {exc}"
    if isinstance(exc, SchemaOutdated):
        return EX_CONFIG, str(exc)
    if isinstance(exc, StoreUnavailable):
        return EX_TEMPFAIL, f"storage unavailable, try again later: {exc}"
    first_line = next(iter(str(exc).strip().splitlines()), "")
    return EX_SOFTWARE, f"internal error ({type(exc).__name__} at {_where(exc)}): {first_line}"


def for_mta(status: int, message: str) -> tuple[int, str]:
    """`ingest`'s status: 75 for every failure of ours, with the line saying so."""
    if status in _THE_INPUTS_FAULT or status == EX_TEMPFAIL:
        return status, message
    said = message or f"the command ended with status {status}"
    return EX_TEMPFAIL, f"{said} (exit 75: the mail stays with the MTA, which retries)"


def _where(exc: Exception) -> str:
    """The innermost line of our own code the exception passed: enough to report it without
    a traceback in front of the user."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/mailgate/" in f.filename] or frames
    if not ours:
        return "?"
    return f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"
