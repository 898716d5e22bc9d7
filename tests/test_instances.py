"""One daemon per SQLite database, and a mail that kills the daemon's own process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mailgate.service.app import build_context
from mailgate.service.deaths import Run, count_deaths
from mailgate.store.spool import accept
from tests.conftest import make_config
from tests.daemon_harness import REPO, SUPPORT, Child, send_data, write_config
from tests.dovecot import PLAIN_HOST, ImapUser, dovecot, imap_user
from tests.helpers import free_port, poll
from tests.mails import make_mail

__all__ = ["dovecot", "imap_user"]  # fixtures, used by name

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


def test_a_database_named_by_another_path_is_the_same_database(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen, free_port())
    first = Child(config, listen, tmp_path / "first.log")
    first.start()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "desk.db").symlink_to(tmp_path / "mailgate.db")
    try:
        other = second_config(tmp_path, config, f"127.0.0.1:{free_port()}")
        text = other.read_text(encoding="utf-8")
        linked = text.replace(f"{tmp_path}/mailgate.db", f"{tmp_path}/shared/desk.db")
        other.write_text(linked, encoding="utf-8")
        second = mailgate(other, "run")
        assert second.returncode == EX_TEMPFAIL
        assert f"{tmp_path}/mailgate.db.lock" in second.stderr
    finally:
        first.stop()


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


def imap_config(tmp_path: Path, name: str, user: ImapUser) -> Path:
    """A daemon that polls the test mailbox and writes its mail out as files."""
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\nlisten = "127.0.0.1:{free_port()}"\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        f'from = "Support <{SUPPORT}>"\n'
        '[http]\nlisten = ""\n'
        f'[[imap]]\nname = "support"\nhost = "{PLAIN_HOST}"\nport = {user.server.port}\n'
        f'security = "none"\nusername = "{user.name}"\npassword = "{user.password}"\n'
        'processed_folder = "Processed"\npoll_interval = 1.0\n',
        encoding="utf-8",
    )
    return path


def test_two_daemons_on_one_sqlite_database_never_poll_one_mailbox_twice(
    tmp_path: Path, imap_user: ImapUser
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(REPO)
    configs = [imap_config(tmp_path, name, imap_user) for name in ("one", "two")]
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    daemons = []
    for config, log in zip(configs, logs, strict=True):
        with log.open("wb") as stderr:
            command = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
            daemons.append(subprocess.Popen(command, stderr=stderr, env=env))
    try:
        imap_user.append(
            *(make_mail(subject=f"Request {n}", sender=f"c{n}@firma{n}.example") for n in range(20))
        )
        poll(lambda: len(imap_user.folder("Processed")) == 20 or None, timeout=60, what="moved")
        sent = tmp_path / "sent"
        poll(lambda: len(list(sent.rglob("*.eml"))) >= 20 or None, timeout=60, what="answers")
        refused = [d for d in daemons if d.poll() is not None]
        assert [d.returncode for d in refused] == [75]
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.terminate()
                assert daemon.wait(timeout=60) == 0
    listed = json.loads(mailgate(configs[0], "tickets", "list", "--format", "json").stdout)
    assert sorted(t["subject"] for t in listed) == sorted(f"Request {n}" for n in range(20))
    assert len(list((tmp_path / "sent").rglob("*.eml"))) == 20  # one acknowledgement each
    assert sum("event=already_running" in log.read_text() for log in logs) == 1


def quarantined_then_innocent(daemon: Child, config: Path) -> None:
    """On the start after the second death: the bad mail quarantined for it, and the next
    mail a ticket as usual; then a clean stop."""
    try:
        quarantined = poll(lambda: quarantine(config) or None, what="the bad mail quarantined")
        assert [q["reason"] for q in quarantined] == [
            "processing it ended the daemon process 2 times"
        ]
        assert send_data(daemon.address, make_mail(subject="Innocent"))[0] == 250
        poll(lambda: subjects(config) == ["Innocent"] or None, what="the innocent ticket")
    finally:
        assert stopped(daemon) == 0


def send_poison(address: tuple[str, int]) -> None:
    """The poison by SMTP. The daemon commits it before it answers, and may die of it before
    its 250 has left: a dropped connection then is the answer (the MTA would try again)."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        assert send_data(address, make_mail(subject="poison"))[0] == 250


def test_a_mail_that_kills_the_daemon_process_is_quarantined_after_two_deaths(
    tmp_path: Path, db_url: str
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen, free_port())
    text = config.read_text().replace(f"sqlite:///{tmp_path}/mailgate.db", db_url)
    config.write_text(text + "[processing]\nworkers = 0\n", encoding="utf-8")
    daemon = Child(config, listen, tmp_path / "daemon.log")
    daemon.command = [sys.executable, "-m", "tests.poisoned_daemon", "-c", str(config), "run"]
    daemon.start()
    send_poison(daemon.address)
    assert died(daemon) == -signal.SIGKILL
    daemon.launch()  # restarted, as systemd would: the poison is taken up again
    assert died(daemon) == -signal.SIGKILL
    daemon.start()
    quarantined_then_innocent(daemon, config)
    assert subjects(config) == ["Innocent"]


def test_a_mail_whose_processing_never_ends_is_quarantined_after_two_stops(
    tmp_path: Path,
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen, free_port())
    config.write_text(config.read_text() + "[processing]\nworkers = 0\n", encoding="utf-8")
    log = tmp_path / "daemon.log"
    daemon = Child(config, listen, log)
    daemon.command = [sys.executable, "-m", "tests.poisoned_daemon", "-c", str(config), "run"]
    daemon.start()
    assert send_data(daemon.address, make_mail(subject="endless"))[0] == 250
    for stops in (1, 2):
        assert daemon.proc is not None
        # Once this run has started (and counted the marks it found), its own mark.
        poll(lambda n=stops: log.read_text().count("event=started") == n, what="started")
        poll(lambda: in_hand(tmp_path / "mailgate.db"), what="the mail in hand")
        daemon.proc.terminate()
        # It cannot end while the mail is in hand; systemd kills it at TimeoutStopSec.
        poll(lambda n=stops: log.read_text().count("event=shutdown_timeout") >= n, timeout=60)
        daemon.kill()
        daemon.start()
    quarantined_then_innocent(daemon, config)


def stopped(daemon: Child) -> int:
    """SIGTERM, and SIGKILL after a minute, as systemd would: no process is left behind."""
    assert daemon.proc is not None
    daemon.proc.terminate()
    try:
        return daemon.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        raise


def in_hand(database: Path) -> bool:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        marked = conn.execute("SELECT count(*) FROM intake WHERE in_hand_by != ''").fetchone()
    return bool(marked[0])


def died(daemon: Child) -> int:
    assert daemon.proc is not None
    return daemon.proc.wait(timeout=60)


def quarantine(config: Path) -> list[dict[str, str]]:
    listed = mailgate(config, "quarantine", "list", "--format", "json")
    return list(json.loads(listed.stdout))


def subjects(config: Path) -> list[str]:
    listed = mailgate(config, "tickets", "list", "--format", "json")
    return sorted(t["subject"] for t in json.loads(listed.stdout))


@pytest.mark.postgres
def test_a_mark_of_a_live_instance_is_no_death(tmp_path: Path, postgres_url: str) -> None:
    ctx = build_context(make_config(tmp_path, postgres_url))
    stored = accept(ctx.store, make_mail(subject="Slow one"), "smtp", ctx.clock())
    working, starting = Run(ctx.store), Run(ctx.store)
    working.mark([stored.intake_id])
    assert count_deaths(ctx.store, starting.name) == {}  # the other instance is at work
    working.lock.release()  # as when its process dies: the server lets go
    assert count_deaths(ctx.store, starting.name) == {stored.intake_id: 1}
    assert count_deaths(ctx.store, starting.name) == {stored.intake_id: 1}  # counted once
    starting.end()
    ctx.store.dispose()
