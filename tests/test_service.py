"""mailgate as a system service: metrics and health over HTTP, sd_notify, SIGHUP and SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import cast

import pytest

from mailgate.config import Config, ConfigError, HttpConfig, load, parse_config
from mailgate.service import sdnotify
from mailgate.service.app import build_transport, serve
from mailgate.service.sdnotify import Notifier
from mailgate.store.models import Ticket
from tests.daemon_harness import (
    CUSTOMER,
    SUPPORT,
    DaemonThread,
    count,
    daemon_config,
    running,
    send_data,
)
from tests.helpers import free_port, poll
from tests.mails import make_mail

REPO = Path(__file__).resolve().parents[1]
LABEL = re.compile(r'(\w+)="([^"]*)"')
NEW_ACK = (
    "{% block subject %}[{{ ticket.cid }}] {{ ticket.subject }}{% endblock %}\n"
    "{% block body %}Edited acknowledgement for {{ ticket.cid }}.{% endblock %}\n"
)


# Straight to the daemon, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(listen: str, path: str) -> tuple[int, str]:
    try:
        with DIRECT.open(f"http://{listen}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one series in a scrape (labels in any order), if present."""
    for line in exposition.splitlines():
        series, _, value = line.rpartition(" ")
        found, _, label_text = series.partition("{")
        if found == name and dict(LABEL.findall(label_text)) == labels:
            return float(value)
    return None


def done(scrape: str) -> float | None:
    return sample(scrape, "mailgate_messages_total", source="smtp", outcome="done")


def test_metrics_count_smtp_mail_and_healthz_answers(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = dataclasses.replace(daemon_config(tmp_path), http=HttpConfig(listen=listen))
    with running(config) as mg:
        for number in range(3):
            assert send_data(mg.address, make_mail(subject=f"metrics {number}"))[0] == 250
        poll(lambda: done(http_get(listen, "/metrics")[1]) == 3, what="3 outcomes")
        status, scrape = http_get(listen, "/metrics")
        assert status == 200
        assert sample(scrape, "mailgate_tickets_created_total") == 3
        assert sample(scrape, "mailgate_processing_seconds_count") == 3
        # The acknowledgements are sent or about to be: the gauge is read from the database.
        queued = sample(scrape, "mailgate_outbox_messages", status="queued") or 0
        assert (sample(scrape, "mailgate_outbox_messages", status="sent") or 0) + queued == 3
        assert http_get(listen, "/healthz") == (200, "ok\n")
        assert http_get(listen, "/nothing-here")[0] == 404
        assert count(mg.ctx, Ticket) == 3


# A real `mailgate run` in a child process --------------------------------------------------


class Notices:
    """A Unix datagram socket in the abstract namespace, standing in for systemd."""

    def __init__(self) -> None:
        self.name = f"@mailgate-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.received: list[str] = []

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The next datagram for which `wanted` is true; earlier ones are kept in `received`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                notice = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.received.append(notice)
            if wanted(notice):
                return notice
        pytest.fail(f"no such notice; got {self.received}")

    def close(self) -> None:
        self.sock.close()


def write_config(tmp_path: Path, listen: str, log_format: str = "keyvalue") -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\ntemplates = "{tmp_path}/templates"\n'
        f'[smtp]\nlisten = "{listen}"\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        f'from = "Support <{SUPPORT}>"\n'
        f'[logging]\nformat = "{log_format}"\n'
        '[http]\nlisten = ""\n',
        encoding="utf-8",
    )
    (tmp_path / "templates").mkdir(exist_ok=True)
    return path


@contextmanager
def mailgate_run(tmp_path: Path, config: Path, notices: Notices) -> Iterator[subprocess.Popen[str]]:
    """`python -m mailgate run` with systemd's variables; stderr goes to tmp_path/stderr.log."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NOTIFY_SOCKET": notices.name,
        "WATCHDOG_USEC": "400000",
    }
    command = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
    with (
        (tmp_path / "stderr.log").open("w") as log,
        subprocess.Popen(command, stderr=log, env=env, text=True) as proc,
    ):
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def stderr_log(tmp_path: Path) -> str:
    return (tmp_path / "stderr.log").read_text()


def smtp_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


def acknowledgement_text(tmp_path: Path, subject: str) -> str:
    """The plain text of the acknowledgement for the mail with this subject, once written."""

    def find() -> str:
        for path in (tmp_path / "sent").glob("*.eml"):
            message = cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=default))
            if str(message["Subject"]).endswith(f"] {subject}"):
                part = message.get_body(preferencelist=("plain",))
                return part.get_content() if part is not None else ""
        return ""

    return poll(find, what=f"the acknowledgement of {subject!r}")


def test_run_notifies_systemd_and_reloads_on_sighup(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen)
    notices = Notices()
    address = smtp_address(listen)
    try:
        with mailgate_run(tmp_path, config, notices) as proc:
            ready = notices.wait_for(lambda n: "READY=1" in n.splitlines())
            assert f"STATUS=taking mail on {listen}" in ready.splitlines()
            notices.wait_for(lambda n: n == "WATCHDOG=1")

            assert send_data(address, make_mail(subject="before"))[0] == 250
            assert "thank you for getting in touch" in acknowledgement_text(tmp_path, "before")
            override = tmp_path / "templates" / "en"
            override.mkdir()
            (override / "acknowledgement.txt.j2").write_text(NEW_ACK, encoding="utf-8")
            # Templates are read once: the edit waits for SIGHUP.
            assert send_data(address, make_mail(subject="edited"))[0] == 250
            assert "thank you" in acknowledgement_text(tmp_path, "edited")

            proc.send_signal(signal.SIGHUP)
            reloading = notices.wait_for(lambda n: "RELOADING=1" in n.splitlines())
            # Type=notify-reload (config/notify-reload.conf) matches the reload to its SIGHUP
            # by this timestamp on the monotonic clock.
            fields = dict(line.split("=", 1) for line in reloading.splitlines())
            assert abs(int(fields["MONOTONIC_USEC"]) / 1e6 - time.monotonic()) < 30
            notices.wait_for(lambda n: "READY=1" in n.splitlines())
            assert send_data(address, make_mail(subject="reloaded"))[0] == 250
            assert "Edited acknowledgement for CID-1002" in acknowledgement_text(
                tmp_path, "reloaded"
            )

            config.write_text("[smtp]\nlisten_port = 25\n", encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            refused = notices.wait_for(lambda n: "READY=1" in n.splitlines())
            assert "reload refused" in refused
            assert "smtp.listen_port: unknown key" in refused
            # Still serving, with the configuration and templates it had.
            assert send_data(address, make_mail(subject="after"))[0] == 250
            assert "Edited acknowledgement" in acknowledgement_text(tmp_path, "after")

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        notices.wait_for(lambda n: "STOPPING=1" in n.splitlines())
    finally:
        notices.close()
    log = stderr_log(tmp_path)
    assert "event=reloaded" in log
    assert "event=reload_refused" in log and "smtp.listen_port: unknown key" in log
    assert "Traceback" not in log


BROKEN_ACK = (
    "{% block subject %}[{{ ticket.cid }}] {{ ticket.subject }}{% endblock %}\n"
    "{% block body %}\n"
    "{% if contact.name %}Hello {{ contact.name }},\n"
    "{% endblock %}\n"
)


def test_a_broken_template_is_refused_at_sighup_and_mail_goes_on(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen)
    notices = Notices()
    address = smtp_address(listen)
    try:
        with mailgate_run(tmp_path, config, notices) as proc:
            notices.wait_for(lambda n: "READY=1" in n.splitlines())
            # A daemon that has been taking mail for a while.
            assert send_data(address, make_mail(subject="before"))[0] == 250
            assert "thank you for getting in touch" in acknowledgement_text(tmp_path, "before")
            override = tmp_path / "templates" / "en"
            override.mkdir()
            broken = override / "acknowledgement.txt.j2"
            broken.write_text(BROKEN_ACK, encoding="utf-8")
            # `config check` refuses the file; so does the running daemon.
            checked = subprocess.run(
                [sys.executable, "-m", "mailgate", "-c", str(config), "config", "check"],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                check=False,
            )
            assert checked.returncode == 78
            assert f"{broken}:4:" in checked.stderr

            proc.send_signal(signal.SIGHUP)
            refused = notices.wait_for(lambda n: "READY=1" in n.splitlines())
            assert "reload refused" in refused and f"{broken}:4:" in refused
            # Mail goes on with the templates the daemon had: nothing is quarantined.
            assert send_data(address, make_mail(subject="after"))[0] == 250
            assert "thank you for getting in touch" in acknowledgement_text(tmp_path, "after")

            broken.write_text(NEW_ACK, encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            reloaded = notices.wait_for(lambda n: "READY=1" in n.splitlines())
            assert "reload refused" not in reloaded
            assert send_data(address, make_mail(subject="fixed"))[0] == 250
            assert "Edited acknowledgement" in acknowledgement_text(tmp_path, "fixed")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    finally:
        notices.close()
    log = stderr_log(tmp_path)
    assert "event=reload_refused" in log and f"{broken}:4:" in log
    assert "event=quarantine" not in log and "Traceback" not in log


def test_run_refuses_to_start_with_a_broken_template(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"127.0.0.1:{free_port()}")
    broken = tmp_path / "templates" / "de" / "closed.txt.j2"
    broken.parent.mkdir()
    broken.write_text(BROKEN_ACK, encoding="utf-8")
    started = subprocess.run(
        [sys.executable, "-m", "mailgate", "-c", str(config), "run"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
    assert started.returncode == 78
    assert f"mailgate: template error: {broken}:4:" in started.stderr
    assert "Traceback" not in started.stderr


def deliver_one(address: tuple[str, int], raw: bytes) -> str:
    """One SMTP transaction; the final reply code, or how it ended without one."""
    try:
        client = smtplib.SMTP(*address, timeout=10)
    except smtplib.SMTPConnectError as exc:
        return str(exc.smtp_code)
    except OSError:
        return "refused"
    try:
        client.ehlo("client.test")
        code = client.mail(CUSTOMER)[0]
        if code == 250:
            code = client.rcpt(SUPPORT)[0]
        if code == 250:
            code = client.data(raw)[0]
        return str(code)
    except smtplib.SMTPDataError as exc:
        return str(exc.smtp_code)
    except OSError:  # smtplib.SMTPServerDisconnected included: the answer is unknown
        return "disconnected"
    finally:
        with suppress(OSError):
            client.close()


class Stream(threading.Thread):
    """Delivers numbered mails one after another until the daemon refuses connections."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(name="smtp-stream", daemon=True)
        self.address = address
        self.results: dict[str, str] = {}  # subject -> reply code or how it ended
        self.lock = threading.Lock()

    def run(self) -> None:
        for number in range(10_000):
            subject = f"stream {number}"
            result = deliver_one(self.address, make_mail(subject=subject))
            with self.lock:
                self.results[subject] = result
            if result == "refused":
                return

    def with_result(self, *wanted: str) -> set[str]:
        with self.lock:
            return {subject for subject, result in self.results.items() if result in wanted}


def ticket_subjects(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "mailgate.db") as db:
        return {row[0] for row in db.execute("SELECT subject FROM ticket")}


def test_sigterm_during_a_stream_of_deliveries(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen, log_format="json")
    notices = Notices()
    try:
        with mailgate_run(tmp_path, config, notices) as proc:
            notices.wait_for(lambda n: "READY=1" in n.splitlines())
            stream = Stream(smtp_address(listen))
            stream.start()
            poll(lambda: len(stream.with_result("250")) >= 5, what="some accepted mail")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            stream.join(30)
            assert not stream.is_alive()
    finally:
        notices.close()
    accepted = stream.with_result("250")
    turned_away = stream.with_result("421", "451", "refused")
    tickets = ticket_subjects(tmp_path)
    assert accepted <= tickets
    assert not turned_away & tickets
    assert "refused" in stream.results.values()
    # Structured logs: every line on stderr is one JSON event.
    events = [json.loads(line) for line in stderr_log(tmp_path).splitlines()]
    assert {"started", "stopping", "stopped"} <= {e.get("event") for e in events}


def test_notifier_speaks_to_a_socket_path_and_knows_its_watchdog(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        manager.settimeout(10)
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"}
        notifier = Notifier(env)
        assert notifier.ready("taking mail\non 127.0.0.1:2525")
        assert manager.recv(4096) == b"READY=1\nSTATUS=taking mail on 127.0.0.1:2525"
        assert notifier.stopping("draining")
        assert manager.recv(4096) == b"STOPPING=1\nSTATUS=draining"
    assert notifier.watchdog_interval == 15.0
    # The watchdog variables of another process (a parent's) are not ours.
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval is None
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 15.0
    # Without systemd there is nobody to tell, and that is no error.
    assert not Notifier({}).ready("x")
    assert not notifier.watchdog()  # the socket is gone: logged once, the daemon goes on


def test_a_manager_that_stops_reading_never_holds_the_notifier(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        sent: list[bool] = []
        # The kernel queues ten datagrams for a reader by default; a hundred pings go far
        # past that. In a thread: a send that waited would never come back.
        # A change of state waits a moment for room, then gives up as well.
        pinging = threading.Thread(
            target=lambda: sent.extend(
                [*(notifier.watchdog() for _ in range(100)), notifier.ready("up")]
            )
        )
        pinging.start()
        pinging.join(timeout=30)
        assert not pinging.is_alive(), "the notifier waited for a manager that does not read"
        assert sent[0] and not sent[-2] and not sent[-1]
        # The manager reads again: what was sent is there, and notices go through again.
        manager.setblocking(False)
        queued = 0
        with suppress(BlockingIOError):
            while manager.recv(4096) == b"WATCHDOG=1":
                queued += 1
        assert queued == sent.count(True)
        assert notifier.stopping("draining")
        assert manager.recv(4096) == b"STOPPING=1\nSTATUS=draining"


def test_a_change_of_state_waits_for_room_in_the_managers_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """READY must not be lost to a manager that is a moment behind (systemd, busy at boot,
    reads every service's notices from one socket)."""
    # Time enough for the reader below on a busy machine; READY goes as soon as there is room.
    monkeypatch.setattr(sdnotify, "STATE_WAIT", 30.0)
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        while notifier.watchdog():  # the queue full
            pass
        reader = threading.Timer(0.2, lambda: manager.recv(4096))  # room, a moment later
        reader.start()
        assert notifier.ready("taking mail")
        reader.join()


def test_run_stops_on_sigterm_when_the_manager_does_not_read(tmp_path: Path) -> None:
    """The daemon's loop sends the watchdog pings: a manager that reads nothing after READY
    must not freeze it (it did, once the socket's queue was full: no SIGTERM took effect)."""
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, listen)
    notices = Notices()
    try:
        with mailgate_run(tmp_path, config, notices) as proc:
            notices.wait_for(lambda n: "READY=1" in n.splitlines())
            # Pings every 0.2 s: the queue of ten is full after two seconds unread.
            poll(lambda: "event=notify_failed" in stderr_log(tmp_path), what="a ping not taken")
            assert send_data(smtp_address(listen), make_mail(subject="unread"))[0] == 250
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
    finally:
        notices.close()
    log = stderr_log(tmp_path)
    assert log.count("event=notify_failed") == 1
    assert "event=stopped" in log


def test_http_endpoint_answers_bad_requests_with_400(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = dataclasses.replace(daemon_config(tmp_path), http=HttpConfig(listen=listen))
    with running(config), socket.create_connection(smtp_address(listen), timeout=10) as conn:
        conn.sendall(b"nonsense\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 400 ")


class ReloadableDaemon(DaemonThread):
    """serve() in a thread, with the hangup event SIGHUP would set."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.hangup: asyncio.Event | None = None

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop, self.hangup = asyncio.Event(), asyncio.Event()
        transport = build_transport(self.config)
        await serve(self.ctx, transport, self.stop, self.started.set, hangup=self.hangup)

    def reload(self) -> None:
        assert self.loop is not None and self.hangup is not None
        self.loop.call_soon_threadsafe(self.hangup.set)


def test_reload_switches_outbound_but_not_the_listen_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailgate")
    listen = f"127.0.0.1:{free_port()}"
    path = write_config(tmp_path, listen)
    mg = ReloadableDaemon(load(path))
    mg.start()
    try:
        assert send_data(mg.address, make_mail(subject="first"))[0] == 250
        poll(lambda: list((tmp_path / "sent").glob("*.eml")), what="the first acknowledgement")
        text = path.read_text().replace("/sent", "/sent-after-reload")
        path.write_text(text.replace(listen, f"127.0.0.1:{free_port()}"), encoding="utf-8")
        mg.reload()
        poll(lambda: "event=reloaded" in caplog.text, what="the reload")
        assert "event=reload_needs_restart sections=smtp" in caplog.text
        # Still on the address it was started with; new mail goes out the new way.
        assert send_data(mg.address, make_mail(subject="second"))[0] == 250
        poll(lambda: list((tmp_path / "sent-after-reload").glob("*.eml")), what="the new outbound")
        assert len(list((tmp_path / "sent").glob("*.eml"))) == 1
    finally:
        mg.shutdown()


def test_logging_and_http_sections_are_checked() -> None:
    config = parse_config('[logging]\nformat = "json"\n[http]\nlisten = ""\n', "f.toml")
    assert (config.logging.format, config.http.listen) == ("json", "")
    with pytest.raises(ConfigError, match=r"f.toml: http.listen: 'nowhere' is not HOST:PORT"):
        parse_config('[http]\nlisten = "nowhere"\n', "f.toml")
    with pytest.raises(ConfigError, match=r"f.toml: logging.format: 'xml' is not one of"):
        parse_config('[logging]\nformat = "xml"\n', "f.toml")
