"""One daemon per SQLite database, and a mail that kills the daemon's own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.daemon_harness import REPO, Child, write_config
from tests.helpers import free_port
from tests.mails import make_mail

EX_TEMPFAIL = 75


def mailgate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A mailgate command as an operator types it; it must end by itself."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "mailgate", "-c", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def second_config(tmp_path: Path, first: Path, listen: str) -> Path:
    """The same database and data, another SMTP address: only the database is shared."""
    text = first.read_text(encoding="utf-8")
    old_listen = text.split('listen = "', 1)[1].split('"', 1)[0]
    path = tmp_path / "second.toml"
    path.write_text(text.replace(old_listen, listen, 1), encoding="utf-8")
    return path


def test_a_second_daemon_on_one_sqlite_database_refuses_to_start(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen, free_port())
    first = Child(config, listen, tmp_path / "first.log")
    first.start()
    try:
        assert first.proc is not None
        second = mailgate(second_config(tmp_path, config, f"127.0.0.1:{free_port()}"), "run")
        assert second.returncode == EX_TEMPFAIL
        lock = f"{tmp_path}/mailgate.db.lock"
        assert lock in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert "event=started" not in second.stderr

        # Commands that read or write a row go on while the daemon runs.
        mail = tmp_path / "request.eml"
        mail.write_bytes(make_mail(subject="Phoned in", sender="bob@acme.example"))
        ingested = mailgate(config, "ingest", str(mail))
        assert ingested.returncode == 0, ingested.stderr
        listed = mailgate(config, "tickets", "list", "--format", "json")
        assert [t["subject"] for t in json.loads(listed.stdout)] == ["Phoned in"]

        # The lock dies with its holder, however it ends.
        first.kill()
        after = Child(config, listen, tmp_path / "after.log")
        after.start()
        after.stop()
    finally:
        if first.proc is not None and first.proc.poll() is None:
            first.kill()
