"""End to end: mail in over SMTP, ticket in the database, acknowledgement out to a relay."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from mailgate.config import OutboundConfig
from mailgate.store.models import SENT, Article, Outbox, Ticket
from tests.daemon_harness import (
    CUSTOMER,
    SUPPORT,
    DaemonThread,
    Sink,
    connect,
    daemon_config,
    relay,
    running,
)
from tests.helpers import free_port, poll
from tests.mails import make_mail, new_message_id

REPO = Path(__file__).resolve().parents[1]
__all__ = ["relay"]  # a fixture, used by name


def ticket_articles(mg: DaemonThread) -> list[Article]:
    with mg.ctx.store.session() as session:
        return list(session.exec(select(Article).order_by(col(Article.id))))


def outbox_rows(mg: DaemonThread) -> list[Outbox]:
    with mg.ctx.store.session() as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))))


def all_sent(mg: DaemonThread) -> bool:
    rows = outbox_rows(mg)
    return bool(rows) and all(r.status == SENT for r in rows)


def test_customer_mail_ticket_acknowledgement_and_reply(
    tmp_path: Path, relay: tuple[Sink, int]
) -> None:
    sink, relay_port = relay
    outbound = OutboundConfig(
        transport="smtp", host="127.0.0.1", port=relay_port, from_=f"Support <{SUPPORT}>"
    )
    mid = new_message_id()
    with running(daemon_config(tmp_path, outbound=outbound)) as mg:
        with connect(mg.address) as client:
            client.sendmail(
                CUSTOMER, [SUPPORT], make_mail(subject="Printer broken", message_id=mid)
            )
        (ack,) = poll(lambda: sink.to(CUSTOMER), what="the acknowledgement at the relay")
        poll(lambda: all_sent(mg), what="the outbox row marked sent")

        message = ack.message
        assert str(message["Subject"]) == "[CID-1000] Printer broken"
        assert str(message["Auto-Submitted"]) == "auto-replied"
        assert str(message["In-Reply-To"]) == f"<{mid}>"
        assert parseaddr(str(message["Reply-To"]))[1] == SUPPORT
        assert parseaddr(str(message["From"]))[1] == SUPPORT
        assert ack.rcpt_tos == [CUSTOMER]

        reply = make_mail(
            subject="Re: [CID-1000] Printer broken",
            body="It smokes now.\n",
            in_reply_to=mid,
            references=(mid,),
        )
        with connect(mg.address) as client:
            client.sendmail(CUSTOMER, [SUPPORT], reply)
        poll(lambda: len(ticket_articles(mg)) == 2, what="the reply as a second article")
        # Mail the reply caused (if any) is committed with it; let it reach the relay.
        poll(lambda: all_sent(mg), what="the outbox drained")

        with mg.ctx.store.session() as session:
            (ticket,) = session.exec(select(Ticket)).all()
        assert {a.ticket_id for a in ticket_articles(mg)} == {ticket.id}
        assert [r.template for r in outbox_rows(mg)].count("acknowledgement") == 1
    assert len(sink.to(CUSTOMER)) == 1


def write_toml(tmp_path: Path, listen: str) -> Path:
    config = tmp_path / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/mailgate.db"\n'
        f'[paths]\ndata_dir = "{tmp_path}/data"\n'
        f'[smtp]\nlisten = "{listen}"\naddresses = ["{SUPPORT}"]\n'
        f'[outbound]\ntransport = "file"\ndirectory = "{tmp_path}/sent"\n'
        f'from = "Support <{SUPPORT}>"\n',
        encoding="utf-8",
    )
    return config


def test_mailgate_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_toml(tmp_path, listen)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mailgate", "-c", str(config), "run"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stderr is not None
        started = _read_until(proc.stderr, "event=started")
        assert f"listen={listen}" in started
        assert f"outbound=file:{tmp_path}/sent" in started
        host, port = listen.split(":")
        with smtplib.SMTP(host, int(port), timeout=10) as client:
            client.sendmail(CUSTOMER, [SUPPORT], make_mail())
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    assert "Traceback" not in rest
    assert "event=stopped" in rest
    # What was stored before the signal was processed and answered before exiting.
    assert len(list((tmp_path / "sent").glob("*.eml"))) == 1


def _read_until(stream: Any, marker: str) -> str:
    """The first line containing marker (migrations may log before the daemon starts)."""
    for line in stream:
        if marker in line:
            return str(line)
    pytest.fail(f"the daemon exited before logging {marker}")
