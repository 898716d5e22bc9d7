"""What the command answers before it touches a database: --version, --help, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "mailgate"
# Libraries only the commands that work on mail need; `--help` must not wait for them.
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "aiosmtpd", "aiosmtplib", "jinja2", "mailparser")


def mailgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version_names_the_installed_release() -> None:
    result = mailgate("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mailgate {version('mailgate')}\n"


def test_help_lists_the_commands() -> None:
    result = mailgate("--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: mailgate [OPTIONS] COMMAND" in result.stdout
    for command in ("run", "ingest", "tickets", "config", "--version"):
        assert command in result.stdout


def test_help_loads_neither_the_orm_nor_the_mail_libraries() -> None:
    # The timing-free form of "help answers at once": what it imports decides its speed.
    probe = (
        "import json, sys\n"
        "from mailgate.cli import run_cli\n"
        "status = run_cli(['--help'])\n"
        f"heavy = sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'status': status, 'heavy': heavy}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    outcome = json.loads(result.stderr.strip().splitlines()[-1])
    assert outcome == {"status": 0, "heavy": []}


def test_shell_completion_scripts_are_produced() -> None:
    expected = {
        "bash_source": "complete -o nosort -F _mailgate_completion mailgate",
        "zsh_source": "#compdef mailgate",
        "fish_source": "complete --no-files --command mailgate",
    }
    for instruction, line in expected.items():
        result = mailgate(env={"_MAILGATE_COMPLETE": instruction})
        assert result.returncode == 0, result.stderr
        assert line in result.stdout


def test_bash_completion_completes_a_command_name() -> None:
    result = mailgate(
        env={"_MAILGATE_COMPLETE": "bash_complete", "COMP_WORDS": "mailgate tic", "COMP_CWORD": "1"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain,tickets"]


def test_commands_on_tickets_load_no_daemon(tmp_path: Path) -> None:
    """`tickets list` and `ingest` (what Postfix runs for each mail) need the database and
    the mail libraries, not the daemon's SMTP server and scheduler: those took a fifth of
    their time. Nor, for a customer's mail on SQLite, DKIM with its DNS library or
    PostgreSQL's dialect: another tenth."""
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mg.db"\n[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n',
        encoding="utf-8",
    )
    mail = tmp_path / "mail.eml"
    mail.write_bytes(b"From: a@b.example\r\nTo: support@localhost\r\nSubject: Hi\r\n\r\nHello\r\n")
    # Migrated first: a new database's migrations load what commands on it do not need.
    upgrade = [sys.executable, "-m", "mailgate", "-c", str(config), "db", "upgrade"]
    subprocess.run(upgrade, check=True, capture_output=True, timeout=120, cwd=REPO)
    for args in (["ingest", "--no-deliver", str(mail)], ["tickets", "list"]):
        probe = (
            "import json, sys\n"
            "from mailgate.cli import run_cli\n"
            f"status = run_cli(['-c', {str(config)!r}, *{args!r}])\n"
            "daemon = sorted(m for m in sys.modules if m.startswith(('aiosmtpd', 'apscheduler."
            "schedulers', 'mailgate.service.daemon', 'mailgate.intake.smtp')))\n"
            "unneeded = sorted(m for m in sys.modules if m.split('.')[0] in ('dkim', 'dns')"
            " or m.startswith('sqlalchemy.dialects.postgresql'))\n"
            "print(json.dumps({'status': status, 'daemon': daemon + unneeded}), file=sys.stderr)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
        )
        outcome = json.loads(result.stderr.strip().splitlines()[-1])
        assert outcome == {"status": 0, "daemon": []}, (args, result.stderr)
