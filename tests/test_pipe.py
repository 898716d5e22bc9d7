"""`mailgate ingest -` as Postfix's pipe runs it: the real console script, mail on stdin.
Postfix bounces the mail to the customer on any exit status but 75 (EX_TEMPFAIL), on which it
keeps the mail and retries: every failure that is ours must exit 75."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.mails import make_mail
from tests.test_cli import Result, mailgate, write_config


def pipe(
    config: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    """What Postfix's pipe does: the console script, the mail on stdin, a working directory
    of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "-c", str(config), "ingest", *args, "-"],
        input=make_mail() if stdin is None else stdin,
        capture_output=True,
        cwd=config.parent,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def deferred(result: Result, says: str) -> None:
    """Exit 75 with one line saying why, and no traceback for Postfix to log."""
    assert result.returncode == 75, result.stderr
    assert says in result.stderr
    assert "mail stays with the MTA" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_configuration_defers(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "[tickets]\nstart = 0\n")
    deferred(pipe(cfg), "tickets.start: must be at least 1")
    # By hand, the same configuration is still an error of its own kind.
    assert mailgate("tickets", "list", config=cfg).returncode == 78


def test_missing_configuration_file_defers(tmp_path: Path) -> None:
    deferred(pipe(tmp_path / "gone.toml"), "gone.toml: configuration file not found")


def test_missing_database_driver_defers(tmp_path: Path) -> None:
    """A PostgreSQL URL where the driver is not installed (hidden here by a module of the
    same name that cannot be imported)."""
    hide = tmp_path / "hide"
    (hide / "psycopg").mkdir(parents=True)
    (hide / "psycopg" / "__init__.py").write_text("raise ImportError('no psycopg here')\n")
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            f"sqlite:///{tmp_path}/mg.db", "postgresql+psycopg://mailgate@127.0.0.1/mailgate"
        )
    )
    result = pipe(cfg, env={"PYTHONPATH": str(hide)})
    deferred(result, "database.url: no driver for postgresql+psycopg is installed")


def test_schema_newer_than_the_code_defers(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    assert mailgate("db", "upgrade", config=cfg).returncode == 0
    with sqlite3.connect(tmp_path / "mg.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.close()
    deferred(pipe(cfg), "database schema is at 9999, newer than this mailgate")


@pytest.mark.postgres
def test_postgres_schema_not_migrated_defers(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL waits for `mailgate db upgrade`: until then mail waits with the MTA."""
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(f"sqlite:///{tmp_path}/mg.db", postgres_url))
    assert mailgate("db", "upgrade", config=cfg).returncode == 0
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0012'"))
    engine.dispose()
    deferred(pipe(cfg), "run `mailgate db upgrade`")


def test_unexpected_failure_defers_without_traceback(tmp_path: Path) -> None:
    """The database file is no database (a restore gone wrong): nothing mail could fix."""
    cfg = write_config(tmp_path)
    (tmp_path / "mg.db").write_bytes(b"not a database\n" * 100)
    result = pipe(cfg)
    deferred(result, "internal error (DatabaseError at database.py:")
    assert "file is not a database" in result.stderr
    # Fixed, the MTA's next try takes the same mail.
    (tmp_path / "mg.db").unlink()
    again = pipe(cfg)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "-: ticket CID-1000"


def test_bad_arguments_in_master_cf_defer(tmp_path: Path) -> None:
    result = pipe(write_config(tmp_path), "--recipent", "support@example.com")
    assert result.returncode == 75
    assert "No such option '--recipent'" in result.stderr


def test_unreadable_file_is_still_the_inputs_fault(tmp_path: Path) -> None:
    result = mailgate("ingest", str(tmp_path / "gone.eml"), config=write_config(tmp_path))
    assert result.returncode == 66


def test_envelope_recipient_picks_the_category(tmp_path: Path) -> None:
    """Bcc'd to billing@: only the envelope says so, as on SMTP."""
    cfg = write_config(tmp_path, '[smtp.categories]\n"billing@example.com" = "billing"\n')
    cfg.write_text(
        cfg.read_text().replace(
            'addresses = ["support@example.com"]',
            'addresses = ["support@example.com", "billing@example.com"]',
        )
    )
    bcc = make_mail(subject="Invoice wrong", to="someone-else@acme.example")
    result = pipe(
        cfg, "--sender", "alice@acme.example", "--recipient", "billing@example.com", stdin=bcc
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-: ticket CID-1000"
    listed = json.loads(mailgate("tickets", "list", "--format", "json", config=cfg).stdout)
    assert [(t["subject"], t["category"]) for t in listed] == [("Invoice wrong", "billing")]


@pytest.mark.parametrize("null_sender", ["", "MAILER-DAEMON"])
def test_bounce_has_an_empty_envelope_sender(tmp_path: Path, null_sender: str) -> None:
    """Postfix passes ${sender} of a bounce as null_sender= says: empty, else MAILER-DAEMON."""
    cfg = write_config(tmp_path)
    result = pipe(cfg, "--sender", null_sender, "--recipient", "support@example.com")
    assert result.returncode == 0, result.stderr
