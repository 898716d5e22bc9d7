"""Slow and idle SMTP clients: caps on sessions in all and per client address (421 beyond
them), a shorter idle limit under pressure; on the daemon's real listener over loopback."""

from __future__ import annotations

import os
import re
import resource
import select
import smtplib
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest

from mailgate.store.models import Ticket
from tests.daemon_harness import CUSTOMER, SUPPORT, count, daemon_config, running
from tests.helpers import free_port, poll
from tests.mails import make_mail


@dataclass
class Slow:
    """A client that has read the server's first reply and then says nothing."""

    sock: socket.socket
    first: bytes  # the first reply line

    def rest(self) -> bytes:
        """Everything the server says from now until it hangs up."""
        said = b""
        while chunk := self.sock.recv(4096):
            said += chunk
        return said


def slow_client(address: tuple[str, int], source: str) -> Slow:
    """Connect from `source` (any 127.x.y.z address is loopback) and read one reply line."""
    sock = socket.create_connection(address, timeout=10, source_address=(source, 0))
    first = b""
    while not first.endswith(b"\r\n") and (chunk := sock.recv(1)):
        first += chunk
    return Slow(sock, first)


@contextmanager
def slow_clients(address: tuple[str, int], sources: list[str]) -> Iterator[list[Slow]]:
    with ExitStack() as stack:
        clients = []
        for source in sources:
            client = slow_client(address, source)
            stack.callback(client.sock.close)
            clients.append(client)
        yield clients


def deliver(address: tuple[str, int], source: str, subject: str) -> None:
    with smtplib.SMTP(*address, timeout=10, source_address=(source, 0)) as client:
        assert client.sendmail(CUSTOMER, [SUPPORT], make_mail(subject=subject)) == {}


def test_a_client_beyond_its_share_gets_421_and_others_still_deliver(tmp_path: Path) -> None:
    config = daemon_config(
        tmp_path, max_sessions=20, max_sessions_per_client=5, busy_idle_timeout=30.0
    )
    with running(config) as mg, slow_clients(mg.address, ["127.0.0.1"] * 6) as clients:
        assert [c.first[:4] for c in clients] == [b"220 "] * 5 + [b"421 "]
        assert clients[5].first.startswith(b"421 4.7.0 Too many connections")
        assert clients[5].rest() == b""  # and closed at once
        # The five slow sessions of one client cost nobody else anything.
        deliver(mg.address, "127.0.0.2", "from another client")
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")


def test_beyond_the_total_cap_every_client_gets_421(tmp_path: Path) -> None:
    config = daemon_config(
        tmp_path, max_sessions=20, max_sessions_per_client=5, busy_idle_timeout=30.0
    )
    sources = [f"127.0.0.{n}" for n in range(2, 6) for _ in range(5)]
    with running(config) as mg:
        with slow_clients(mg.address, sources[:-1]) as clients:
            assert all(c.first.startswith(b"220 ") for c in clients)
            # Nineteen slow sessions open: one left, and a real delivery gets it.
            deliver(mg.address, "127.0.0.9", "while nineteen wait")
            # Once that session has ended, the twentieth slow client takes the last place.
            last = poll(lambda: _admitted(mg.address, sources[-1]), what="the last place")
            with slow_clients(mg.address, ["127.0.0.10"]) as [turned_away]:
                assert turned_away.first.startswith(b"421 4.7.0 Too many connections")
            last.sock.close()
        # The slow ones gone, their places are free again.
        poll(lambda: _delivered(mg.address, "127.0.0.10"), what="a delivery after them")
        poll(lambda: count(mg.ctx, Ticket) == 2, what="both tickets")


def test_a_flood_of_connections_is_turned_away_and_mail_still_comes_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The idle limit outlasts opening the flood, also on a loaded machine: with 1 s, the
    # first sessions were cut while the last connections came, and their places taken.
    config = daemon_config(
        tmp_path, max_sessions=20, max_sessions_per_client=5, busy_idle_timeout=5.0
    )
    sources = [f"127.0.1.{n}" for n in range(1, 41) for _ in range(5)]  # 200 connections
    with running(config) as mg, slow_clients(mg.address, sources) as clients:
        greetings = [c.first[:4] for c in clients]
        assert greetings.count(b"220 ") <= 20
        assert greetings.count(b"421 ") >= 180
        # One line for the flood, not one per connection (its count follows every 10 s).
        assert caplog.text.count("event=connection_refused") == 1
        # The slow sessions are cut after the short idle limit, and real mail comes in.
        poll(
            lambda: _delivered(mg.address, "127.0.0.2"),
            timeout=30,
            what="a delivery through the flood",
        )
        poll(lambda: count(mg.ctx, Ticket) == 1, what="the ticket")


def _admitted(address: tuple[str, int], source: str) -> Slow | None:
    client = slow_client(address, source)
    if client.first.startswith(b"220 "):
        return client
    client.sock.close()
    return None


def _delivered(address: tuple[str, int], source: str) -> bool:
    try:
        deliver(address, source, "a delivery")
    except smtplib.SMTPConnectError:  # 421 at the greeting: all places taken still
        return False
    return True


def test_idle_sessions_are_cut_sooner_under_pressure(tmp_path: Path) -> None:
    """Over half the places taken, a session idle for busy_idle_timeout is closed (also one
    that was idle already when the pressure began), until the pressure has eased."""
    config = daemon_config(
        tmp_path, max_sessions=4, busy_idle_timeout=0.2, idle_timeout=30.0, session_timeout=60.0
    )
    with running(config) as mg, slow_clients(mg.address, ["127.0.0.1"] * 3) as clients:
        socks = [c.sock for c in clients]
        readable, _, _ = select.select(socks, [], [], 10)
        assert readable, "no idle session was cut under pressure"
        said = clients[socks.index(readable[0])].rest()
        assert said.startswith(b"421 4.4.2 ") and b"idle time limit reached" in said
        # The first two were idle under the 30 s rule when the third brought the pressure,
        # so one of them goes first.
        assert any(sock in readable for sock in socks[:2])


# The open files limit and the log of a repeating error, on `mailgate run` itself -----------

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def mailgate_run(tmp_path: Path, listen: str, nofile: tuple[int, int]) -> Iterator[Popen[str]]:
    """`mailgate run` started under the given open files limits (soft, hard); its log goes to
    tmp_path/stderr.log. Ready once it answers on `listen`."""
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\nlisten = "{listen}"\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        '[http]\nlisten = ""\n',
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    with (
        (tmp_path / "stderr.log").open("w") as log,
        Popen(command, stderr=log, env=env, text=True, preexec_fn=limit) as proc,
    ):
        try:
            host, port = listen.rsplit(":", 1)
            poll(lambda: _answers((host, int(port))), timeout=30, what="the daemon")
            yield proc
        finally:
            proc.terminate()
            if proc.wait(timeout=30) is None:
                proc.kill()


def _answers(address: tuple[str, int]) -> bool:
    try:
        with smtplib.SMTP(*address, timeout=5) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files limit")


def test_the_daemon_raises_its_open_files_limit(tmp_path: Path) -> None:
    unit = (REPO / "config" / "mailgate.service").read_text()
    assert "\nLimitNOFILE=65536\n" in unit
    listen = f"127.0.0.1:{free_port()}"
    with mailgate_run(tmp_path, listen, (256, 4096)) as proc:
        assert open_files_limit(proc.pid) == (4096, 4096)


def test_accept_out_of_files_is_logged_once_then_counted(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    host, port = listen.rsplit(":", 1)
    with mailgate_run(tmp_path, listen, (64, 64)):
        # More connections than the daemon has descriptors: accept() fails, again and again.
        with ExitStack() as stack:
            for _ in range(80):
                sock = socket.create_connection((host, int(port)), timeout=10)
                stack.callback(sock.close)
            poll(
                lambda: "event=repeated" in _log(tmp_path),
                timeout=30,
                what="the count of the repeated error",
            )
        # The flood gone, mail comes in again.
        poll(lambda: _delivered((host, int(port)), "127.0.0.1"), timeout=30, what="a delivery")
    log = _log(tmp_path)
    reported = [line for line in log.splitlines() if "accept() out of system resource" in line]
    # asyncio's own report (with its traceback after it), then one line with the count.
    assert len(reported) == 2, reported
    assert re.search(
        r"event=repeated what='socket.accept\(\) out of system resource"
        r" OSError EMFILE' count=\d+ seconds=10",
        log,
    )


def _log(tmp_path: Path) -> str:
    return (tmp_path / "stderr.log").read_text()
