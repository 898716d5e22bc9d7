"""Slow and idle SMTP clients: caps on sessions in all and per client address (421 beyond
them), a shorter idle limit under pressure; on the daemon's real listener over loopback."""

from __future__ import annotations

import select
import smtplib
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from mailgate.models import Ticket
from tests.daemon_harness import CUSTOMER, SUPPORT, count, daemon_config, running
from tests.helpers import poll
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


def test_a_flood_of_connections_is_turned_away_and_mail_still_comes_in(tmp_path: Path) -> None:
    config = daemon_config(
        tmp_path, max_sessions=20, max_sessions_per_client=5, busy_idle_timeout=1.0
    )
    sources = [f"127.0.1.{n}" for n in range(1, 41) for _ in range(5)]  # 200 connections
    with running(config) as mg, slow_clients(mg.address, sources) as clients:
        greetings = [c.first[:4] for c in clients]
        assert greetings.count(b"220 ") <= 20
        assert greetings.count(b"421 ") >= 180
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
