"""SIGTERM while clients are inside DATA: who finishes within the grace time is answered 250
and gets a ticket; who is still sending after it gets 421 and no ticket."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailgate.config import ConfigError, parse_config
from tests.daemon_harness import CUSTOMER, SUPPORT
from tests.helpers import free_port, poll
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]
GRACE = 3.0


def write_config(tmp_path: Path, port: int, grace: float) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\naddresses = ["{SUPPORT}"]\n'
        f"shutdown_grace_seconds = {grace}\n"
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        f'from = "Support <{SUPPORT}>"\n'
        '[http]\nlisten = ""\n',
        encoding="utf-8",
    )
    return path


@contextmanager
def mailgate_run(tmp_path: Path, config: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
    with (
        (tmp_path / "stderr.log").open("wb") as log,
        subprocess.Popen(command, stderr=log, env=env) as proc,
    ):
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


class Client:
    """A raw SMTP client that can stop in the middle of DATA."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.file = self.sock.makefile("rb")
        assert self.reply().startswith("220")

    def reply(self) -> str:
        """One whole reply (the last line of a multi-line one)."""
        while True:
            line = self.file.readline().decode()
            if not line:
                return "(closed)"
            if line[3:4] != "-":
                return line.rstrip("\r\n")

    def command(self, line: str) -> str:
        self.sock.sendall(f"{line}\r\n".encode())
        return self.reply()

    def start_data(self, raw: bytes) -> bytes:
        """Everything up to DATA, and the first half of the message; the rest is returned."""
        assert self.command("EHLO client.test").startswith("250")
        assert self.command(f"MAIL FROM:<{CUSTOMER}>").startswith("250")
        assert self.command(f"RCPT TO:<{SUPPORT}>").startswith("250")
        assert self.command("DATA").startswith("354")
        half = len(raw) // 2
        self.sock.sendall(raw[:half])
        return raw[half:] + b".\r\n"

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def ticket_subjects(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "mailgate.db") as db:
        return {row[0] for row in db.execute("SELECT subject FROM ticket")}


def mail(subject: str) -> bytes:
    raw = make_mail(subject=subject)
    assert raw.endswith(b"\r\n")  # the end of DATA follows on a line of its own
    return raw


def test_sigterm_lets_data_finish_within_the_grace_and_421s_after_it(tmp_path: Path) -> None:
    port = free_port()
    with mailgate_run(tmp_path, write_config(tmp_path, port, GRACE)) as proc:
        poll(lambda: b"event=started" in (tmp_path / "stderr.log").read_bytes(), timeout=30)
        quick, slow = Client(port), Client(port)
        quick_rest = quick.start_data(mail("finished in time"))
        slow.start_data(mail("still sending"))
        proc.send_signal(signal.SIGTERM)
        poll(lambda: b"event=stopping" in (tmp_path / "stderr.log").read_bytes())
        # A newcomer is turned away at once; the two inside DATA are not.
        newcomer = socket.create_connection(("127.0.0.1", port), timeout=15)
        assert newcomer.makefile("rb").readline().startswith(b"421 4.3.2")
        newcomer.close()
        quick.sock.sendall(quick_rest)
        assert quick.reply().startswith("250 2.0.0")
        # After its transaction, the session may not begin another.
        assert quick.command(f"MAIL FROM:<{CUSTOMER}>").startswith("421 4.3.2")
        quick.close()
        # The slow client says nothing more: when the grace is over it is told why it ends.
        assert slow.reply().startswith("421 4.3.2")
        assert slow.reply() == "(closed)"
        slow.close()
        assert proc.wait(timeout=30) == 0
    subjects = ticket_subjects(tmp_path)
    assert "finished in time" in subjects
    assert "still sending" not in subjects


def test_the_grace_time_is_checked() -> None:
    assert parse_config("", "(test)").smtp.shutdown_grace_seconds == 10.0
    with pytest.raises(ConfigError, match=r"smtp\.shutdown_grace_seconds"):
        parse_config("[smtp]\nshutdown_grace_seconds = -1\n", "(test)")
