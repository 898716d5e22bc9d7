"""The daemon's worker processes: mail is processed there, and a dead worker loses nothing."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import func, select

from mailgate.config import Config, ProcessingConfig
from mailgate.flows.pipeline import Outcome
from mailgate.outbound.context import Context
from mailgate.reading.parse import ParsedMail
from mailgate.service import daemon, workers
from mailgate.service.ahead import worth_it
from mailgate.service.app import build_context
from mailgate.service.workers import WorkerProcessor
from mailgate.store.models import Article, Intake, Outbox, Ticket
from mailgate.store.spool import Incoming, accept_many, stored_raws
from tests.daemon_harness import Child, count, daemon_config, running, send_data, write_config
from tests.helpers import children, free_port, poll
from tests.mails import make_mail

POISON = "Subject: poison"


def with_workers(config: Config, workers: int = 1) -> Config:
    return dataclasses.replace(config, processing=ProcessingConfig(workers=workers))


def worker_pids() -> list[int]:
    """The worker processes: children of the fork server, itself a child of this process."""
    servers = [
        pid
        for pid in children(os.getpid())
        if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return [worker for server in servers for worker in children(server)]


def ticket_subjects(ctx: Context) -> list[str]:
    with ctx.store.session() as session:
        return sorted(t.subject for t in session.exec(select(Ticket)))


def test_workers_process_mail_apart_from_the_daemon(tmp_path: Path) -> None:
    with running(with_workers(daemon_config(tmp_path), 2)) as mg:
        for n in range(6):
            mail = make_mail(subject=f"Request {n}", sender=f"customer{n}@acme.example")
            assert send_data(mg.address, mail)[0] == 250
        poll(lambda: count(mg.ctx, Outbox) == 6 or None, what="six acknowledgements")
        workers = poll(lambda: worker_pids() or None, what="worker processes")
        assert len(workers) == 2 and os.getpid() not in workers
    assert ticket_subjects(mg.ctx) == [f"Request {n}" for n in range(6)]
    assert worker_pids() == []  # stopped with the daemon


def test_killed_idle_worker_is_replaced_and_nothing_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with running(with_workers(daemon_config(tmp_path))) as mg:
        assert send_data(mg.address, make_mail(subject="Before"))[0] == 250
        poll(lambda: count(mg.ctx, Ticket) == 1 or None, what="first ticket")
        for pid in worker_pids():
            os.kill(pid, signal.SIGKILL)
        assert send_data(mg.address, make_mail(subject="After"))[0] == 250
        poll(lambda: count(mg.ctx, Outbox) == 2 or None, what="second acknowledgement")
    assert ticket_subjects(mg.ctx) == ["After", "Before"]
    assert "event=worker_pool_restarted" in caplog.text
    with mg.ctx.store.session() as session:
        assert {i.status for i in session.exec(select(Intake))} == {"done"}


@pytest.mark.skipif(not worth_it(), reason="parsing ahead needs a second core")
def test_a_backlog_is_parsed_ahead_of_the_worker_and_ends_as_without(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailgate.workers")
    config = with_workers(daemon_config(tmp_path))
    backlog = build_context(config)
    requests = [
        make_mail(subject=f"Drucker {n}", sender=f"k{n}@firma{n}.example") for n in range(300)
    ]
    replies = [
        make_mail(subject=f"AW: [CID-{1000 + n}] Drucker {n}", sender=f"k{n}@firma{n}.example")
        for n in range(300)
    ]
    now = backlog.clock()
    accept_many(backlog.store, [Incoming(raw, "smtp", now) for raw in requests + replies])
    backlog.store.dispose()

    with running(config) as mg:
        poll(lambda: count(mg.ctx, Article) == 600 or None, timeout=120, what="the backlog")

    assert ticket_subjects(mg.ctx) == sorted(f"Drucker {n}" for n in range(300))
    with mg.ctx.store.session() as session:
        assert {i.status for i in session.exec(select(Intake))} == {"done"}
        per_ticket = session.exec(select(Article.ticket_id, func.count()).group_by("ticket_id"))
        assert {n for _, n in per_ticket} == {2}  # each request and its reply
    handed = re.findall(r"event=batch messages=\d+ parsed_ahead=(\d+)", caplog.text)
    assert sum(map(int, handed)) > 0, "no batch came parsed ahead"


class PoisonedWorkers(WorkerProcessor):
    """Worker processes that end, as the OOM killer would end them, whenever the poison
    message is in their hands."""

    def _job(self) -> Callable[..., list[Outcome]]:
        return _dies_of_poison


def _dies_of_poison(
    config: Config, generation: int, intake_ids: list[int], parsed: dict[int, ParsedMail]
) -> list[Outcome]:
    """In the worker process: the batch, unless it holds the poison message."""
    assert workers._worker is not None
    with workers._worker[1].store.session() as session:
        if any(POISON.encode() in raw for raw in stored_raws(session, intake_ids).values()):
            os._exit(1)
    return workers._process_in_worker(config, generation, intake_ids, parsed)


def test_message_that_kills_its_worker_is_quarantined_after_two_deaths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        daemon,
        "build_processor",
        lambda ctx: PoisonedWorkers(ctx.config, ctx.config.processing.workers),
    )
    attachment = (("dump.bin", "application/octet-stream", os.urandom(2_000_000)),)
    with running(with_workers(daemon_config(tmp_path, max_size=5_000_000))) as mg:
        assert send_data(mg.address, make_mail(subject="poison", attachments=attachment))[0] == 250
        assert send_data(mg.address, make_mail(subject="Innocent"))[0] == 250
        poll(lambda: count(mg.ctx, Ticket) == 1 or None, what="the innocent ticket")
        quarantined = poll(
            lambda: _intake_with_status(mg.ctx, "quarantined"), timeout=20, what="quarantine"
        )
        assert send_data(mg.address, make_mail(subject="Later"))[0] == 250
        poll(lambda: count(mg.ctx, Ticket) == 2 or None, what="the later ticket")
    assert quarantined.reason == "processing it ended the worker process 2 times"
    assert quarantined.subject == ""  # never parsed to the end
    assert ticket_subjects(mg.ctx) == ["Innocent", "Later"]
    assert caplog.text.count("event=worker_died") == 2


def _intake_with_status(ctx: Context, status: str) -> Intake | None:
    with ctx.store.session() as session:
        return session.exec(select(Intake).where(Intake.status == status)).first()


def test_a_killed_daemon_leaves_no_worker_behind(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    daemon_process = Child(write_config(tmp_path, listen, free_port()), listen, tmp_path / "log")
    daemon_process.start()
    assert daemon_process.proc is not None
    pid = daemon_process.proc.pid
    # The fork server, the resource tracker, the worker, and on 2+ cores the parser.
    expected = 4 if worth_it() else 3
    helpers = poll(lambda: _descendants(pid) if len(_descendants(pid)) >= expected else None)
    # Named for ps and top, which would show each as python3 otherwise.
    names = {"mailgate-worker", "mailgate-parser"} if worth_it() else {"mailgate-worker"}
    poll(lambda: names <= {_name(p) for p in helpers}, what="the children's names")
    daemon_process.kill()  # SIGKILL: no chance to stop its workers
    poll(lambda: not any(Path(f"/proc/{p}").exists() for p in helpers), what="orphans gone")
    assert "event=worker_orphaned" in (tmp_path / "log").read_text()


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def _descendants(pid: int) -> list[int]:
    """Children and grandchildren."""
    return [p for child in children(pid) for p in (child, *children(child))]
