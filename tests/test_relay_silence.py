"""A relay silent after the final dot, and mail held by a sender that died: the outbox sends
it again (the same bytes, one Message-ID), and a dead process holds a row only for a lease."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from mailgate.config import OutboundConfig
from mailgate.outbound.context import Context
from mailgate.outbound.outbox import deliver_due
from mailgate.outbound.transports import SmtpTransport
from mailgate.service.app import build_context, build_transport
from mailgate.store.models import QUEUED, SENT
from tests.helpers import Clock, free_port, ingest, make_config, outbox, poll
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]
SUPPORT = "support@example.com"


class Sink:
    """A relay that keeps what it is sent; its answer to the final dot waits until `answer`
    is set (or `silence` seconds, whichever comes first)."""

    def __init__(self, silence: float = 0.0) -> None:
        self.silence = silence
        self.answer = threading.Event()
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(bytes(envelope.original_content or envelope.content))
        deadline = time.monotonic() + self.silence
        while not self.answer.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the relay's own pace: it is silent, not the test
        return "250 2.0.0 Ok: queued"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@contextmanager
def running_sink(sink: Sink) -> Iterator[int]:
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        sink.answer.set()
        controller.stop()


def queue_one(ctx: Context) -> str:
    """A customer's mail, whose acknowledgement is queued; its Message-ID."""
    ingest(ctx, make_mail(subject="Printer broken"))
    [row] = outbox(ctx)
    assert row.status == QUEUED
    return row.message_id


def test_a_relay_silent_after_the_final_dot_gets_the_same_mail_again(
    tmp_path: Path, db_url: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink(silence=2.0)  # answers, but long after the client has given up
    with running_sink(sink) as port:
        outbound = OutboundConfig(
            transport="smtp", host="127.0.0.1", port=port, from_=f"Support <{SUPPORT}>"
        )
        config = make_config(tmp_path, db_url, outbound=outbound)
        ctx = dataclasses.replace(build_context(config), clock=clock)
        try:
            message_id = queue_one(ctx)
            relay = SmtpTransport("127.0.0.1", port, timeout=0.5, connections=1)
            with caplog.at_level(logging.WARNING, logger="mailgate.outbox"):
                first = asyncio.run(deliver_due(ctx, relay))
            assert first["queued"] == 1 and sink.count() == 1
            [row] = outbox(ctx)
            assert row.status == QUEUED
            assert "no answer to DATA, the relay may have taken the mail" in row.last_error
            assert "event=delivery_ambiguous" in caplog.text
            # The retry, once due: the relay answers this time.
            sink.answer.set()
            clock.advance(seconds=config.outbound.retry_base_seconds)
            assert asyncio.run(deliver_due(ctx, relay))["sent"] == 1
            assert outbox(ctx)[0].status == SENT
        finally:
            ctx.store.dispose()
    # Two copies may reach her, but they are one mail to her client: the same Message-ID.
    copies = [message_from_bytes(raw, policy=default) for raw in sink.received]
    assert [str(c["Message-ID"]) for c in copies] == [f"<{message_id}>"] * 2
    assert sink.received[0] == sink.received[1]


# Leases ----------------------------------------------------------------------------------


def write_config(tmp_path: Path, name: str, db_url: str, outbound: str) -> Path:
    path = tmp_path / name
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\nfrom = "Support <{SUPPORT}>"\nlease_seconds = 2.0\n{outbound}',
        encoding="utf-8",
    )
    return path


def flush_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "mailgate", "-c", str(config), "outbox", "flush"]


def flush(config: Path) -> str:
    """`mailgate outbox flush` in a process of its own; what it prints."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        flush_command(config), env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_mail_held_by_a_process_that_died_is_sent_within_the_lease(
    tmp_path: Path, db_url: str
) -> None:
    sink = Sink(silence=60.0)  # never answers while the first sender lives
    with running_sink(sink) as port:
        to_relay = write_config(
            tmp_path,
            "relay.toml",
            db_url,
            f'transport = "smtp"\nhost = "127.0.0.1"\nport = {port}\n',
        )
        to_files = write_config(
            tmp_path, "files.toml", db_url, f'transport = "file"\ndirectory = "{tmp_path}/sent"\n'
        )
        ctx = build_context(make_config(tmp_path, db_url))
        try:
            message_id = queue_one(ctx)
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            with subprocess.Popen(flush_command(to_relay), env=env) as claimer:
                poll(lambda: sink.count() == 1, timeout=30, what="the first sender in DATA")
                claimer.send_signal(signal.SIGKILL)
                claimer.wait(timeout=10)
            died = time.monotonic()
            # Within the lease (2 s) and a flush or two, not five minutes.
            poll(
                lambda: flush(to_files) == "sent 1, queued 0, failed 0\n",
                timeout=20,
                what="the row taken over",
            )
            assert time.monotonic() - died < 20
            [row] = outbox(ctx)
            assert row.status == SENT and row.attempts == 2
        finally:
            ctx.store.dispose()
    [sent] = list((tmp_path / "sent").glob("*.eml"))
    assert str(message_from_bytes(sent.read_bytes(), policy=default)["Message-ID"]) == (
        f"<{message_id}>"
    )


def test_a_live_slow_sender_keeps_its_row(tmp_path: Path, db_url: str) -> None:
    sink = Sink(silence=60.0)
    with running_sink(sink) as port:
        to_files = write_config(
            tmp_path, "files.toml", db_url, f'transport = "file"\ndirectory = "{tmp_path}/sent"\n'
        )
        config = make_config(tmp_path, db_url)
        outbound = dataclasses.replace(
            config.outbound, transport="smtp", host="127.0.0.1", port=port, lease_seconds=2.0
        )
        ctx = build_context(dataclasses.replace(config, outbound=outbound))
        try:
            queue_one(ctx)
            result: dict[str, int] = {}
            sender = threading.Thread(
                target=lambda: result.update(
                    asyncio.run(deliver_due(ctx, build_transport(ctx.config)))
                )
            )
            sender.start()
            poll(lambda: sink.count() == 1, timeout=30, what="the sender in DATA")
            claimed_until = outbox(ctx)[0].next_attempt_at
            # Renewed twice: past its first lease, the sender still holds the row.
            poll(
                lambda: outbox(ctx)[0].next_attempt_at > claimed_until + timedelta(seconds=1),
                timeout=20,
                what="the lease renewed",
            )
            assert flush(to_files) == "sent 0, queued 0, failed 0\n"
            sink.answer.set()
            sender.join(30)
            assert result["sent"] == 1
            [row] = outbox(ctx)
            assert row.status == SENT and row.attempts == 1
        finally:
            sink.answer.set()
            ctx.store.dispose()
    assert not list((tmp_path / "sent").glob("*.eml"))
    assert sink.count() == 1
