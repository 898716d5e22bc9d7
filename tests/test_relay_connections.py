"""Outgoing mail over kept-open relay connections, at most `connections` at once: counted at
a real aiosmtpd relay on loopback, through the transport and through the outbox."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer

from mailgate.config import ConfigError, OutboundConfig, parse_config
from mailgate.outbound.context import Context
from mailgate.outbound.file_transport import FileTransport
from mailgate.outbound.outbox import deliver_due
from mailgate.outbound.transports import (
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
)
from mailgate.service.app import build_context, build_transport
from mailgate.store.models import FAILED, QUEUED, SENT
from tests.helpers import Clock, free_port, ingest, make_config, outbox, poll
from tests.mails import make_mail

SENDER = "support@example.com"
T = TypeVar("T")


class Relay:
    """aiosmtpd handler that keeps count of its sessions (in all, open now, the most open at
    once, ended by QUIT) and of transactions in DATA at once. It can refuse chosen recipients,
    take its time over DATA, say goodbye (421) to MAIL FROM on the sessions open now, or hang
    up in the middle of DATA."""

    def __init__(self, data_delay: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.data_delay = data_delay
        self.rcpt_reply: dict[str, str] = {}
        self.hang_up_in_data = False
        self.rset_reply = "250 OK"
        self.retiring: set[int] = set()  # sessions that answer MAIL FROM with 421
        self.open: dict[int, SMTPServer] = {}
        self.sessions = self.most_open = self.quits = 0
        self.in_data = self.most_in_data = self.data_commands = 0
        self.received: list[tuple[str, list[str]]] = []

    def opened(self, server: SMTPServer) -> None:
        with self.lock:
            self.open[id(server)] = server
            self.sessions += 1
            self.most_open = max(self.most_open, len(self.open))

    def closed(self, server: SMTPServer) -> None:
        with self.lock:
            self.open.pop(id(server), None)

    def open_now(self) -> int:
        with self.lock:
            return len(self.open)

    def retire_open_sessions(self) -> None:
        with self.lock:
            self.retiring.update(self.open)

    async def handle_MAIL(
        self, server: SMTPServer, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if id(server) in self.retiring:
            return "421 4.4.2 sink.test closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTPServer, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_commands += 1
            self.in_data += 1
            self.most_in_data = max(self.most_in_data, self.in_data)
        try:
            if self.hang_up_in_data:
                assert server.transport is not None
                server.transport.close()
                return "451 4.3.0 never heard"
            await asyncio.sleep(self.data_delay)
            with self.lock:
                self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
            return "250 2.0.0 Ok: queued"
        finally:
            with self.lock:
                self.in_data -= 1

    async def handle_RSET(self, server: SMTPServer, session: Any, envelope: Any) -> str:
        return self.rset_reply

    async def handle_QUIT(self, server: SMTPServer, session: Any, envelope: Any) -> str:
        with self.lock:
            self.quits += 1
        return "221 2.0.0 Bye"


class CountedSession(SMTPServer):
    """The relay's side of one connection, reporting when it starts and ends."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        fresh = self.transport is None  # STARTTLS calls this again on the same session
        super().connection_made(transport)
        if fresh:
            self.event_handler.opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.closed(self)
        super().connection_lost(error)


class RelayController(Controller):
    def factory(self) -> SMTPServer:
        return CountedSession(self.handler, **self.SMTP_kwargs)


@contextmanager
def running_relay(
    relay: Relay, port: int | None = None, idle_timeout: float = 300.0
) -> Iterator[int]:
    """The relay on loopback (a free port unless given); it drops a session idle for
    `idle_timeout` seconds, as relays do. Yields the port."""
    port = port or free_port()
    controller = RelayController(
        relay,
        hostname="127.0.0.1",
        port=port,
        server_hostname="sink.test",
        ready_timeout=5.0,
        timeout=idle_timeout,
    )
    before = relay.sessions
    controller.start()
    # start() makes sure with a connection of its own, which is not the client's.
    poll(lambda: relay.sessions > before and relay.open_now() == 0, what="the relay's check")
    relay.sessions = relay.most_open = relay.quits = 0
    try:
        yield port
    finally:
        controller.stop()


def transport(port: int, connections: int, **kwargs: Any) -> SmtpTransport:
    return SmtpTransport(
        "127.0.0.1",
        port,
        timeout=5.0,
        local_hostname="mailgate.test",
        connections=connections,
        **kwargs,
    )


async def hand(relay_transport: SmtpTransport, rcpt: str = "a@kunde.example") -> str:
    """One small message straight to the transport, as the outbox would hand it."""
    return await relay_transport.send(SENDER, [rcpt], b"Subject: hi\r\n\r\nhi\r\n", "1-test")


def relay_context(tmp_path: Path, db_url: str, clock: Clock, port: int, n: int) -> Context:
    outbound = OutboundConfig(
        transport="smtp",
        host="127.0.0.1",
        port=port,
        from_=f"Support <{SENDER}>",
        connections=n,
    )
    config = make_config(tmp_path, db_url, outbound=outbound)
    return dataclasses.replace(build_context(config), clock=clock)


@pytest.fixture
def relay_ctx(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[Callable[[int, int], Context]]:
    """Builds a store whose relay is the given port, with [outbound] connections = n."""
    made: list[Context] = []

    def build(port: int, n: int) -> Context:
        made.append(relay_context(tmp_path, db_url, clock, port, n))
        return made[-1]

    yield build
    for ctx in made:
        ctx.store.dispose()


def queue_acknowledgements(ctx: Context, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        ingest(ctx, make_mail(sender=f"Kunde {n} <k{n}@firma{n}.example>"))


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


def statuses(ctx: Context) -> list[tuple[str, int]]:
    return [(row.status, row.attempts) for row in outbox(ctx)]


# Sharing and bounding ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 6])  # 6: more than the transport's default of 4
def test_a_round_shares_at_most_n_connections(
    relay_ctx: Callable[[int, int], Context], n: int
) -> None:
    relay = Relay(data_delay=0.02)  # the relay takes its time: the lanes overlap
    with running_relay(relay) as port:
        ctx = relay_ctx(port, n)
        queue_acknowledgements(ctx, 12)
        relay_transport = build_transport(ctx.config)  # as the daemon builds it from the file

        async def main() -> dict[str, int]:
            try:
                return await deliver_due(ctx, relay_transport)
            finally:
                await relay_transport.close()

        assert run(main) == {SENT: 12, QUEUED: 0, FAILED: 0}
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert statuses(ctx) == [(SENT, 1)] * 12
    assert len(relay.received) == 12
    assert relay.sessions <= n < 12  # fewer connections than messages
    assert relay.most_open <= n  # never more than n at once
    assert relay.most_in_data == n  # and as many messages in flight as connections allow
    assert relay.quits == relay.sessions


def test_transport_never_opens_more_than_its_connections() -> None:
    relay = Relay(data_delay=0.02)
    with running_relay(relay) as port:
        relay_transport = transport(port, 2)

        async def main() -> None:
            # More senders than connections: the rest wait for a free one.
            await asyncio.gather(*(hand(relay_transport, f"c{i}@kunde.example") for i in range(10)))
            await relay_transport.close()

        run(main)
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert len(relay.received) == 10
    assert (relay.sessions, relay.most_open, relay.most_in_data) == (2, 2, 2)


# Closing -----------------------------------------------------------------------------------


def test_close_hangs_up_every_kept_connection() -> None:
    relay = Relay(data_delay=0.02)
    with running_relay(relay) as port:
        relay_transport = transport(port, 3)

        async def main() -> None:
            await asyncio.gather(*(hand(relay_transport) for _ in range(6)))
            assert relay.open_now() == 3  # kept for the next message
            await relay_transport.close()
            # Closed, the transport still sends, but keeps nothing open.
            await hand(relay_transport)

        run(main)
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert (relay.sessions, relay.quits, len(relay.received)) == (4, 4, 7)


def test_idle_connections_are_hung_up_after_idle_seconds() -> None:
    relay = Relay()
    with running_relay(relay) as port:
        relay_transport = transport(port, 2, idle_seconds=0.2)

        async def main() -> None:
            await hand(relay_transport)
            assert relay.open_now() == 1
            await asyncio.sleep(0.6)
            assert relay.quits == 1
            # The next message simply gets a new connection.
            await hand(relay_transport)

        run(main)
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert (relay.sessions, relay.quits, len(relay.received)) == (2, 2, 2)


def test_connections_end_with_the_event_loop_without_close() -> None:
    # What `mailgate ingest` and `outbox flush` do: one asyncio.run, no close().
    relay = Relay()
    with running_relay(relay) as port:
        relay_transport = transport(port, 2)
        for _ in range(2):
            asyncio.run(hand(relay_transport))
            poll(lambda: relay.open_now() == 0, what="the relay to see the session end")
    assert (relay.sessions, relay.quits) == (2, 2)


def test_cancelled_round_leaves_no_connection_open(
    relay_ctx: Callable[[int, int], Context],
) -> None:
    relay = Relay(data_delay=5.0)
    with running_relay(relay) as port:
        ctx = relay_ctx(port, 2)
        queue_acknowledgements(ctx, 4)
        relay_transport = transport(port, 2)

        async def main() -> None:
            task = asyncio.create_task(deliver_due(ctx, relay_transport))
            await asyncio.to_thread(poll, lambda: relay.in_data == 2, 5.0, "two in DATA")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await relay_transport.close()

        run(main)
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert relay.received == []
    # The leased rows come back when their lease runs out, as after a crash.
    assert statuses(ctx) == [(QUEUED, 1)] * 4


# A connection the relay let go -------------------------------------------------------------


def test_relay_dropping_idle_connections_between_rounds_loses_nothing(
    relay_ctx: Callable[[int, int], Context], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.outbox")
    relay = Relay()
    with running_relay(relay, idle_timeout=0.3) as port:
        ctx = relay_ctx(port, 2)
        relay_transport = transport(port, 2)

        async def main() -> list[dict[str, int]]:
            rounds = []
            for first in (0, 3):
                queue_acknowledgements(ctx, 3, first)
                rounds.append(await deliver_due(ctx, relay_transport))
                await asyncio.sleep(0.8)  # the relay drops the idle sessions meanwhile
                assert relay.open_now() == 0
            await relay_transport.close()
            return rounds

        assert run(main) == [{SENT: 3, QUEUED: 0, FAILED: 0}] * 2
    assert statuses(ctx) == [(SENT, 1)] * 6
    assert len(relay.received) == 6
    assert "event=delivery_failed" not in caplog.text
    assert "event=relay_unavailable" not in caplog.text


def drop_open_sessions(relay: Relay) -> None:
    """Hang up every session from the relay's side, and wait for it there while the caller's
    event loop stands still: the client has not noticed when it sends MAIL FROM."""
    with relay.lock:
        servers = list(relay.open.values())
    for server in servers:
        server.loop.call_soon_threadsafe(server.transport.close)  # type: ignore[union-attr]
    poll(lambda: relay.open_now() == 0, what="the relay to drop its sessions")


@pytest.mark.parametrize("how", ["dropped", "421"])
def test_kept_connection_the_relay_let_go_costs_no_attempt(
    relay_ctx: Callable[[int, int], Context], caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.outbox")
    relay = Relay()
    with running_relay(relay) as port:
        ctx = relay_ctx(port, 1)
        relay_transport = transport(port, 1)

        async def main() -> list[dict[str, int]]:
            queue_acknowledgements(ctx, 1)
            first = await deliver_due(ctx, relay_transport)
            if how == "dropped":
                drop_open_sessions(relay)  # blocks this loop on purpose
            else:
                relay.retire_open_sessions()
            queue_acknowledgements(ctx, 2, 1)
            second = await deliver_due(ctx, relay_transport)
            await relay_transport.close()
            return [first, second]

        assert run(main) == [{SENT: 1, QUEUED: 0, FAILED: 0}, {SENT: 2, QUEUED: 0, FAILED: 0}]
    assert statuses(ctx) == [(SENT, 1)] * 3  # the lost connection cost no attempt
    assert len(relay.received) == 3
    assert relay.sessions == 2
    assert "event=delivery_failed" not in caplog.text


def test_kept_connection_found_closed_at_mail_from_goes_again_on_a_new_one() -> None:
    relay = Relay()
    with running_relay(relay) as port:
        relay_transport = transport(port, 1)

        async def main() -> None:
            await hand(relay_transport)  # kept
            drop_open_sessions(relay)  # nothing awaited from here to MAIL FROM
            await hand(relay_transport, "b@kunde.example")
            await relay_transport.close()

        run(main)
    assert relay.received == [(SENDER, ["a@kunde.example"]), (SENDER, ["b@kunde.example"])]
    assert relay.sessions == 2


def test_connection_lost_after_data_is_not_sent_again() -> None:
    # Once the message has gone out, the relay may have it: only the outbox's next
    # attempt, later, sends it again.
    relay = Relay()
    with running_relay(relay) as port:
        relay_transport = transport(port, 1)

        async def main() -> None:
            await hand(relay_transport)  # kept
            relay.hang_up_in_data = True
            with pytest.raises(TemporaryFailure, match="Disconnected"):
                await hand(relay_transport)
            await relay_transport.close()

        run(main)
    assert relay.data_commands == 2
    assert relay.sessions == 1


@pytest.mark.parametrize(
    ("rset_reply", "sessions"),
    [("250 OK", 1), ("500 5.5.1 confused", 2)],
    ids=["reset-kept", "reset-failed-hung-up"],
)
def test_after_a_refusal_the_connection_is_kept_only_once_reset(
    rset_reply: str, sessions: int
) -> None:
    relay = Relay()
    relay.rcpt_reply["gone@kunde.example"] = "550 5.1.1 no such user"
    relay.rset_reply = rset_reply
    with running_relay(relay) as port:
        relay_transport = transport(port, 1)

        async def main() -> None:
            with pytest.raises(PermanentFailure, match=r"550 5\.1\.1"):
                await hand(relay_transport, "gone@kunde.example")
            await hand(relay_transport)
            await relay_transport.close()

        run(main)
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert relay.received == [(SENDER, ["a@kunde.example"])]
    assert (relay.sessions, relay.quits) == (sessions, sessions)


# Refusals and a relay that goes away ---------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status"),
    [("451 4.3.0 greylisted", QUEUED), ("550 5.1.1 no such user", FAILED)],
    ids=["4xx-waits", "5xx-fails"],
)
def test_a_refusal_concerns_only_its_own_message(
    relay_ctx: Callable[[int, int], Context], reply: str, status: str
) -> None:
    relay = Relay()
    relay.rcpt_reply["k2@firma2.example"] = reply
    with running_relay(relay) as port:
        ctx = relay_ctx(port, 2)
        queue_acknowledgements(ctx, 6)
        relay_transport = transport(port, 2)

        async def main() -> dict[str, int]:
            counts = await deliver_due(ctx, relay_transport)
            await relay_transport.close()
            return counts

        assert run(main) == {SENT: 5, QUEUED: int(status == QUEUED), FAILED: int(status == FAILED)}
    rows = outbox(ctx)
    refused = [row for row in rows if "k2@firma2.example" in row.to_addrs]
    assert [(r.status, r.attempts) for r in refused] == [(status, 1)]
    assert reply in refused[0].last_error
    assert [(r.status, r.last_error) for r in rows if r not in refused] == [(SENT, "")] * 5
    assert relay.sessions <= 2  # after a refusal and RSET, the connection is used on


def test_relay_gone_with_connections_kept_every_row_keeps_its_turn(
    relay_ctx: Callable[[int, int], Context], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate.outbox")
    relay = Relay()
    port = free_port()
    ctx = relay_ctx(port, 2)
    relay_transport = transport(port, 2)

    async def main() -> list[dict[str, int]]:
        rounds = []
        with running_relay(relay, port):
            queue_acknowledgements(ctx, 2)
            rounds.append(await deliver_due(ctx, relay_transport))  # two connections kept
        queue_acknowledgements(ctx, 8, 2)
        rounds.append(await deliver_due(ctx, relay_transport))
        with running_relay(relay, port):
            clock.advance(seconds=61)  # past the first backoff
            rounds.append(await deliver_due(ctx, relay_transport))
            await relay_transport.close()
        return rounds

    assert run(main) == [
        {SENT: 2, QUEUED: 0, FAILED: 0},
        {SENT: 0, QUEUED: 8, FAILED: 0},
        {SENT: 8, QUEUED: 0, FAILED: 0},
    ]
    assert statuses(ctx) == [(SENT, 1)] * 2 + [(SENT, 2)] * 8
    assert len(relay.received) == 10
    assert caplog.text.count("event=relay_unavailable") == 1
    assert caplog.text.count("event=relay_recovered") == 1
    assert "event=delivery_failed" not in caplog.text


# Configuration and the file transport ------------------------------------------------------


def test_connections_setting() -> None:
    assert parse_config("", "f.toml").outbound.connections == 4
    assert parse_config("[outbound]\nconnections = 1\n", "f.toml").outbound.connections == 1
    with pytest.raises(ConfigError, match=r"^f\.toml: outbound\.connections: must be at least 1"):
        parse_config("[outbound]\nconnections = 0\n", "f.toml")
    with pytest.raises(ValueError, match="connections"):
        SmtpTransport("127.0.0.1", 25, connections=0)


def test_file_transport_with_several_lanes(tmp_path: Path, clock: Clock) -> None:
    outbound = OutboundConfig(
        transport="file", directory=str(tmp_path / "sent"), from_=f"Support <{SENDER}>"
    )
    ctx = dataclasses.replace(build_context(make_config(tmp_path, outbound=outbound)), clock=clock)
    try:
        queue_acknowledgements(ctx, 10)
        counts = asyncio.run(deliver_due(ctx, FileTransport(tmp_path / "sent")))
        assert counts == {SENT: 10, QUEUED: 0, FAILED: 0}
        assert len(list((tmp_path / "sent").glob("*.eml"))) == 10
    finally:
        ctx.store.dispose()


def test_many_kept_connections_stay_within_the_limit_over_time() -> None:
    # Messages trickle in while connections age out: never more than the limit at once.
    relay = Relay(data_delay=0.01)
    with running_relay(relay) as port:
        relay_transport = transport(port, 2, idle_seconds=0.05)

        async def one(delay: float) -> None:
            await asyncio.sleep(delay)
            await hand(relay_transport)

        async def main() -> None:
            await asyncio.gather(*(one(i * 0.013) for i in range(40)))
            await relay_transport.close()

        start = time.monotonic()
        run(main)
        assert time.monotonic() - start < 10
        poll(lambda: relay.open_now() == 0, what="the relay to see every session end")
    assert len(relay.received) == 40
    assert relay.most_open <= 2
    assert relay.quits == relay.sessions
