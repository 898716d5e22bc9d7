"""`mailgate ingest` of many files: what the second process works out ahead must change
nothing about what becomes of a message, only when the work is done."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlmodel import select

from mailgate.outbound.context import Context
from mailgate.reading.parse import parse
from mailgate.service import ahead as ahead_module
from mailgate.service import ingest as files
from mailgate.service.app import build_context
from mailgate.store.models import Article, Intake
from mailgate.store.spool import Digests
from tests.conftest import CORPUS
from tests.helpers import Clock, children, make_config
from tests.mails import make_mail


def a_desk(directory: Path) -> Iterator[Context]:
    directory.mkdir()
    context = dataclasses.replace(build_context(make_config(directory)), clock=Clock())
    yield context
    context.store.dispose()


@pytest.fixture
def ahead_desk(tmp_path: Path) -> Iterator[Context]:
    yield from a_desk(tmp_path / "ahead")


@pytest.fixture
def turn_desk(tmp_path: Path) -> Iterator[Context]:
    yield from a_desk(tmp_path / "turn")


def batch() -> dict[str, bytes | None]:
    """New requests, their replies with quoted history, and real-world oddities."""
    mails: dict[str, bytes | None] = {}
    for n in range(8):
        sender = f"Kunde {n} <kunde{n}@firma{n}.example>"
        mails[f"new-{n}"] = make_mail(
            subject=f"Drucker {n} druckt nicht", body="Hallo, bitte helfen Sie uns.", sender=sender
        )
        reply = f"Noch offen.\n\nAm Montag schrieb Support:\n> Wir sehen nach.\n> Ticket {n}\n"
        mails[f"reply-{n}"] = make_mail(
            subject=f"AW: [CID-{1000 + n}] Drucker {n} druckt nicht", body=reply, sender=sender
        )
    for path in sorted(CORPUS.rglob("*.eml")):
        mails[str(path.relative_to(CORPUS))] = path.read_bytes()
    mails["unreadable"] = None
    return mails


def test_a_batch_parsed_ahead_ends_as_one_parsed_at_its_turn(
    ahead_desk: Context, turn_desk: Context
) -> None:
    given = batch()
    ahead = files._parse_all({name: raw for name, raw in given.items() if raw is not None})
    assert set(ahead) == {name for name, raw in given.items() if raw is not None}
    for name, done in ahead.items():
        raw = given[name]
        assert raw is not None
        assert done.mail == parse(raw)
        assert done.digests == Digests.of(raw)

    with_ahead = files._store_and_process(ahead_desk, given, ahead)
    at_turn = files._store_and_process(turn_desk, given, {})

    def outcomes(results: list[files.Ingested]) -> list[tuple[str, str | None]]:
        return [(r.name, r.outcome.describe() if r.outcome else None) for r in results]

    assert outcomes(with_ahead) == outcomes(at_turn)
    assert len(with_ahead) > 100
    assert ("reply-3", "reply CID-1003") in outcomes(with_ahead)
    assert ("unreadable", None) in outcomes(with_ahead)

    def stored(ctx: Context) -> tuple[list[tuple[str, str, str]], list[str]]:
        with ctx.store.session() as session:
            intakes = session.exec(select(Intake.sha256, Intake.content_sha256, Intake.status))
            texts = session.exec(select(Article.text).order_by(Article.id))
            return sorted(intakes), list(texts)

    assert stored(ahead_desk) == stored(turn_desk)


def _parts_of(given: dict[str, bytes | None]) -> tuple[Future[dict[str, files.Ahead]], ...]:
    """Parts of a batch as the second process leaves them: done, being parsed, not begun."""
    done, working, waiting = Future(), Future(), Future()  # type: ignore[var-annotated]
    done.set_result(files._parse_all({"m0": given["m0"] or b""}))
    working.set_running_or_notify_cancel()
    return done, working, waiting


def test_a_batch_takes_what_is_parsed_waits_for_what_is_being_parsed_and_parses_the_rest(
    ahead_desk: Context,
) -> None:
    given: dict[str, bytes | None] = {
        f"m{n}": make_mail(subject=f"Frage {n}", sender=f"k{n}@firma.example") for n in range(3)
    }
    done, working, waiting = _parts_of(given)
    finish = files._parse_all({"m1": given["m1"] or b""})
    threading.Timer(0.2, working.set_result, [finish]).start()

    batch, ahead = files._collected((given, [done, working, waiting]))

    assert batch is given and sorted(ahead) == ["m0", "m1"]
    assert waiting.cancelled()  # m2: this process parses it at its turn
    results = files._store_and_process(ahead_desk, batch, ahead)
    assert [r.outcome.describe() for r in results if r.outcome] == [
        "ticket CID-1000",
        "ticket CID-1001",
        "ticket CID-1002",
    ]


def test_a_part_stuck_in_the_second_process_is_parsed_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ahead_module, "WAIT", 0.1)
    given: dict[str, bytes | None] = {"m0": make_mail(), "m1": make_mail(subject="Zweite")}
    done, stuck, _ = _parts_of(given)
    start = time.monotonic()
    _, ahead = files._collected((given, [done, stuck]))
    assert sorted(ahead) == ["m0"]
    assert time.monotonic() - start < 5


def test_one_batch_starts_no_second_process(
    ahead_desk: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[bool] = []
    real = files._parser

    def parser(in_second_process: bool):  # type: ignore[no-untyped-def]
        started.append(in_second_process)
        return real(in_second_process)

    monkeypatch.setattr(files, "_parser", parser)
    (results,) = files.ingest(ahead_desk, [{"-": make_mail()}])
    assert [r.outcome.describe() for r in results if r.outcome] == ["ticket CID-1000"]
    assert started == [False]


def test_ingest_goes_on_when_the_second_process_dies(
    ahead_desk: Context, caplog: pytest.LogCaptureFixture
) -> None:
    def batches() -> Iterator[dict[str, bytes | None]]:
        for b in range(6):
            yield {
                f"{b}-{n}": make_mail(subject=f"Frage {b}/{n}", sender=f"k{b}x{n}@firma.example")
                for n in range(50)
            }

    results = files.ingest(ahead_desk, batches())
    done = list(next(results))
    deadline = time.monotonic() + 15
    while not (helpers := _grandchildren()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert helpers, "the second process started"
    for pid in helpers:
        os.kill(pid, signal.SIGKILL)
    for more in results:
        done += more

    assert len(done) == 300
    assert all(r.outcome is not None and r.outcome.describe().startswith("ticket") for r in done)
    assert "event=parse_ahead_stopped" in caplog.text


def _grandchildren() -> list[int]:
    """The pool's process: a child of the fork server, which is a child of this process."""
    return [pid for child in children(os.getpid()) for pid in children(child)]
