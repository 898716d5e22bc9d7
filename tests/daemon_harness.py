"""A running daemon for tests: serve() in a thread of its own, and SMTP clients for it."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from mailgate.config import (
    Config,
    DatabaseConfig,
    OutboundConfig,
    PathsConfig,
    SmtpConfig,
)
from mailgate.intake.smtp import split_listen
from mailgate.outbound.context import Context
from mailgate.service.app import build_context, build_transport, serve
from mailgate.service.hosted import HostedPart
from tests.helpers import free_port, poll

CUSTOMER = "alice@acme.example"
SUPPORT = "support@example.com"


def daemon_config(
    tmp_path: Path,
    busy_timeout: float = 5.0,
    max_size: int = 1_000_000,
    outbound: OutboundConfig | None = None,
    **smtp: Any,
) -> Config:
    """SQLite, data and sent mail under tmp_path; SMTP intake on a free local port; `smtp`
    sets further [smtp] keys."""
    return Config(
        source="(test)",
        database=DatabaseConfig(url=f"sqlite:///{tmp_path}/mailgate.db", busy_timeout=busy_timeout),
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        smtp=SmtpConfig(
            listen=f"127.0.0.1:{free_port()}",
            addresses=[SUPPORT],
            max_message_size=max_size,
            **smtp,
        ),
        outbound=outbound
        or OutboundConfig(
            transport="file",
            directory=str(tmp_path / "sent"),
            from_=f"Support <{SUPPORT}>",
        ),
    )


def write_toml(cfg: Config) -> Path:
    """The configuration file `mailgate` commands read for a desk built by daemon_config."""
    root = Path(cfg.paths.data_dir).parent
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "{cfg.database.url}"\n'
        f'[paths]\ndata_dir = "{cfg.paths.data_dir}"\n'
        f'[smtp]\nlisten = "{cfg.smtp.listen}"\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{cfg.outbound.directory}"\n'
        f'from = "Support <{SUPPORT}>"\n[http]\nlisten = ""\n',
        encoding="utf-8",
    )
    return path


class DaemonThread:
    """serve() on an event loop in a thread of its own, stopped the way a signal would."""

    def __init__(self, config: Config, parts: Sequence[HostedPart] = ()) -> None:
        self.config = config
        self.parts = parts
        self.ctx = build_context(config)
        self.started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mailgate-daemon")

    async def _main(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        transport = build_transport(self.config)
        await serve(self.ctx, transport, self.stop, self.started.set, parts=self.parts)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the test thread, which raises it
            self.error = exc
            self.started.set()

    def start(self) -> None:
        self.thread.start()
        assert self.started.wait(15), "daemon did not start"
        if self.error is not None:
            raise self.error

    def shutdown(self) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "daemon did not stop"
        self.ctx.store.dispose()
        if self.error is not None:
            raise self.error

    @property
    def address(self) -> tuple[str, int]:
        return split_listen(self.config.smtp.listen)


@contextmanager
def running(config: Config) -> Iterator[DaemonThread]:
    running_daemon = DaemonThread(config)
    running_daemon.start()
    try:
        yield running_daemon
    finally:
        running_daemon.shutdown()


def connect(address: tuple[str, int]) -> smtplib.SMTP:
    client = smtplib.SMTP(*address, timeout=10)
    client.ehlo("client.test")
    return client


def count(ctx: Context, model: Any) -> int:
    with ctx.store.session() as session:
        return len(session.exec(select(model)).all())


def send_data(address: tuple[str, int], raw: bytes, rcpt: str = SUPPORT) -> tuple[int, bytes]:
    """One transaction without the SIZE parameter, so DATA itself gets the answer."""
    with connect(address) as client:
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(rcpt)[0] == 250
        return client.data(raw)


class Received:
    """What the relay was handed: envelope recipients and the message as bytes."""

    def __init__(self, rcpt_tos: list[str], raw: bytes, mail_from: str = "") -> None:
        self.rcpt_tos = rcpt_tos
        self.raw = raw
        self.mail_from = mail_from  # the envelope sender: where a bounce goes
        self.message = cast(EmailMessage, message_from_bytes(raw, policy=default))


class Sink:
    """aiosmtpd handler standing in for the outbound relay; it keeps every message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(
                Received(list(envelope.rcpt_tos), envelope.original_content, envelope.mail_from)
            )
        return "250 2.0.0 Ok"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]


@contextmanager
def smtp_server(handler: object, port: int | None = None) -> Iterator[int]:
    """An aiosmtpd server with this handler on loopback (a free port unless one is given,
    as for a relay restarted where it was); yields the port."""
    port = port or free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="sink.test", ready_timeout=5.0
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def relay() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    with smtp_server(sink) as port:
        yield sink, port


# `mailgate run` as a process of its own -------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, listen: str, relay_port: int) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\nlisten = "{listen}"\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {relay_port}\n'
        f'from = "Support <{SUPPORT}>"\n'
        '[http]\nlisten = ""\n',
        encoding="utf-8",
    )
    return path


class Child:
    """`python -m mailgate -c CONFIG run`, started, killed and restarted by the test."""

    def __init__(self, config: Path, listen: str, log: Path) -> None:
        self.command = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
        host, _, port = listen.rpartition(":")
        self.address = (host, int(port))
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        poll(self._answers, timeout=30, what="mailgate to take SMTP connections")

    def launch(self) -> None:
        """Start the process, without waiting for it to take mail."""
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env["PYTHONPATH"] = str(REPO)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, stderr=log, env=env)

    def _answers(self) -> bool:
        try:
            with smtplib.SMTP(*self.address, timeout=2) as client:
                return client.noop()[0] == 250
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM: drain and stop cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=60) == 0
