"""What operators read: log lines journald can rank, JSON that always parses, and metrics
named the way Prometheus expects."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from mailgate.config import HttpConfig
from mailgate.service import jobs
from mailgate.service.jobs import Every
from tests.daemon_harness import CUSTOMER, connect, daemon_config, running, send_data
from tests.helpers import free_port, poll
from tests.mails import make_mail
from tests.test_service import (
    REPO,
    Notices,
    http_get,
    mailgate_run,
    sample,
    smtp_address,
    stderr_log,
    write_config,
)

NO_FROM = b"To: support@example.com\r\nSubject: nobody\r\n\r\nbody\r\n"  # quarantined
PRIORITY = {"critical": "2", "error": "3", "warning": "4", "info": "6", "debug": "7"}
PREFIXED = re.compile(r"<(\d)>ts=\S+ level=(\w+) ")


def run_until_quarantine(tmp_path: Path, config: Path) -> str:
    """`mailgate run` as a service: a mail it quarantines, then SIGTERM; its stderr."""
    notices = Notices()
    listen = config.read_text().split('listen = "')[1].split('"')[0]
    try:
        with mailgate_run(tmp_path, config, notices) as proc:
            notices.wait_for(lambda n: "READY=1" in n.splitlines())
            assert send_data(smtp_address(listen), NO_FROM)[0] == 250
            poll(lambda: "quarantined: no usable" in stderr_log(tmp_path), what="the quarantine")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        notices.close()
    return stderr_log(tmp_path)


def test_under_systemd_each_line_starts_with_its_journald_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # systemd sets JOURNAL_STREAM for a service whose stderr is the journal.
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    log = run_until_quarantine(tmp_path, write_config(tmp_path, f"127.0.0.1:{free_port()}"))
    lines = log.splitlines()
    assert lines
    for line in lines:
        found = PREFIXED.match(line)
        assert found, f"no priority prefix: {line!r}"
        assert found[1] == PRIORITY[found[2]], line


def test_journald_priority_off_leaves_lines_bare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    config = write_config(tmp_path, f"127.0.0.1:{free_port()}", log_format="json")
    text = config.read_text().replace("[logging]\n", '[logging]\njournald_priority = "off"\n')
    config.write_text(text)
    log = run_until_quarantine(tmp_path, config)
    entries = [json.loads(line) for line in log.splitlines()]  # no prefix: JSON as it is
    assert any(entry.get("outcome", "").startswith("quarantined") for entry in entries)


HOSTILE = r"""
import logging, sys
from mailgate.config import LoggingConfig
from mailgate.service.logs import configure_logging

configure_logging(LoggingConfig(format="json", journald_priority=sys.argv[1]))
log = logging.getLogger("mailgate.test")
log.warning("event=odd subject=%r", 'a "quoted"\nnew line\t\\ back\x00slash')
log.warning("unbalanced 'quote and } brace {")
log.error("event=bytes from=%s", b"J\xf6rg".decode("utf-8", "surrogateescape"))
log.info("event=unicode name=%s", "Jörg \u2028 \U0001f600")
try:
    raise ValueError('bad "value"\nsecond line')
except ValueError:
    log.exception("event=failed")
"""


@pytest.mark.parametrize("prefix", ["off", "on"])
def test_json_log_lines_always_parse(tmp_path: Path, prefix: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HOSTILE, prefix],
        capture_output=True,
        cwd=REPO,
        check=True,
    )
    lines = done.stderr.decode("utf-8").rstrip("\n").split("\n")  # as log readers split
    assert len(lines) == 5
    if prefix == "on":
        assert [line[:3] for line in lines] == ["<4>", "<4>", "<3>", "<6>", "<3>"]
        lines = [line[3:] for line in lines]
    entries = [json.loads(line) for line in lines]
    # The message's key=value pairs are read shell-wise: the repr's quotes are taken off.
    assert entries[0]["subject"] == 'a "quoted"\\nnew line\\t\\\\ back\\x00slash'
    assert entries[1]["message"] == "unbalanced 'quote and } brace {"
    assert entries[2]["from"] == "J\\xf6rg"  # the byte that was not UTF-8, shown, not lost
    assert entries[3]["name"] == "Jörg \u2028 \U0001f600"
    assert entries[4]["event"] == "failed"
    assert 'ValueError: bad "value"\nsecond line' in entries[4]["exc"]


def test_metrics_follow_prometheus_naming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the interval is shortened, so a scheduled job succeeds within the test.
    monkeypatch.setattr(jobs, "REMINDER_INTERVAL", Every(0.1))
    listen = f"127.0.0.1:{free_port()}"
    config = dataclasses.replace(daemon_config(tmp_path), http=HttpConfig(listen=listen))
    started = time.time()
    with running(config) as mg:
        assert send_data(mg.address, make_mail(subject="counted"))[0] == 250
        with connect(mg.address) as client:
            assert client.mail(CUSTOMER)[0] == 250
            assert client.rcpt("someone@elsewhere.example")[0] == 550
        assert send_data(mg.address, NO_FROM)[0] == 250

        def settled() -> str:
            scrape = http_get(listen, "/metrics")[1]
            if (
                sample(scrape, "mailgate_quarantine_messages") == 1
                and sample(scrape, "mailgate_deliveries_total", result="sent") == 1
                and sample(scrape, "mailgate_job_last_success_timestamp_seconds", job="reminders")
            ):
                return scrape
            return ""

        scrape = poll(settled, what="the quarantine, the acknowledgement and a job run")
    names = {line.split("{")[0].split(" ")[0] for line in scrape.splitlines() if line[:1] != "#"}
    assert not [name for name in names if name.endswith("_created")]
    assert not [name for name in names if name.count("_total") > 1]
    assert sample(scrape, "mailgate_tickets_created_total") == 1
    assert sample(scrape, "mailgate_build_info", version=version("mailgate")) == 1
    assert sample(scrape, "mailgate_deliveries_total", result="deferred") == 0
    assert sample(scrape, "mailgate_deliveries_total", result="failed") == 0
    assert sample(scrape, "mailgate_smtp_refusals_total", code="550") == 1
    succeeded = sample(scrape, "mailgate_job_last_success_timestamp_seconds", job="reminders")
    assert succeeded is not None and started <= succeeded <= time.time()
