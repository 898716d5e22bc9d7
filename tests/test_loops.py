"""Loops: the automatic-mail rate limit, the breaker, display-name tricks, two instances."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from mailgate.config import HttpConfig, LoopsConfig, OutboundConfig, StaffConfig
from mailgate.flows.pipeline import process_batch
from mailgate.outbound import notify
from mailgate.outbound.context import Context
from mailgate.outbound.loops import HEADER_BYTES, header_block, is_automatic
from mailgate.service.app import build_context
from mailgate.store.models import QUEUED, RECEIVED, Article, Event, Intake, Outbox, Ticket
from mailgate.store.spool import Incoming, accept_many, stored_raws
from tests.conftest import CORPUS, Clock
from tests.daemon_harness import DaemonThread, daemon_config, smtp_server
from tests.helpers import ingest, outbox, parsed, poll, tickets
from tests.mails import make_mail, new_message_id

CUSTOMER = "alice@acme.example"
AUTO = {"Auto-Submitted": "auto-replied"}
MINUTE = timedelta(minutes=1)


def acks_to(ctx: Context, address: str) -> list[Outbox]:
    return [r for r in outbox(ctx) if r.template == "acknowledgement" and address in r.to_addrs]


def events(ctx: Context, action: str = "mail_suppressed") -> list[str]:
    with ctx.store.session() as session:
        query = select(Event.detail).where(Event.action == action).order_by(col(Event.id))
        return list(session.exec(query))


def new_request(ctx: Context, subject: str, headers: dict[str, str] | None = None) -> None:
    outcome = ingest(ctx, make_mail(subject=subject, headers=headers))
    assert outcome.status == "done", outcome


# --- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_stops_the_sixth_automatic_mail_and_lifts_after_an_hour(
    ctx: Context, clock: Clock
) -> None:
    for n in range(5):
        new_request(ctx, f"Question {n}")
        clock.advance(minutes=5)
    assert len(acks_to(ctx, CUSTOMER)) == 5
    new_request(ctx, "Question 6")
    assert len(acks_to(ctx, CUSTOMER)) == 5
    assert events(ctx) == [
        f"acknowledgement to {CUSTOMER}: rate limit: 5 automatic mails to {CUSTOMER} "
        "in the last hour"
    ]
    # An hour after the first acknowledgement, one slot is free again.
    clock.advance(minutes=36)
    new_request(ctx, "Question 7")
    assert len(acks_to(ctx, CUSTOMER)) == 6


def test_staff_answers_are_never_limited(ctx: Context) -> None:
    for n in range(6):
        new_request(ctx, f"Question {n}")
    with ctx.store.session() as session:
        ticket = session.exec(select(Ticket)).first()
        assert ticket is not None
        for n in range(3):
            article = Article(
                ticket_id=ticket.id or 0,
                direction="staff",
                text=f"Answer {n}",
                created_at=ctx.clock(),
            )
            notify.send_staff_answer(session, ctx, ticket, article)
    assert len([r for r in outbox(ctx) if r.template == "staff_answer"]) == 3


# --- circuit breaker ----------------------------------------------------------------------------

# (minutes of each automatic mail from the customer, minutes of the customer's own mail,
# whether its acknowledgement is held back). Breaker: 3 automatic mails within 60 minutes.
BREAKER_CASES = [
    ([0, 10, 20], 30, True),  # three in the window: tripped
    ([0, 10], 30, False),  # two are not enough
    ([0, 40, 80], 90, False),  # never three within one window
    ([0, 10, 20], 79, True),  # 59 minutes after the last one: still tripped
    ([0, 10, 20], 81, False),  # a whole window without automatic mail: reset
    ([0, 10, 20, 70, 120], 150, True),  # kept coming, never a quiet hour: still tripped
]


@pytest.mark.parametrize(("auto_at", "mail_at", "held"), BREAKER_CASES)
def test_breaker(ctx: Context, clock: Clock, auto_at: list[int], mail_at: int, held: bool) -> None:
    start = clock.now
    for n, minute in enumerate(auto_at):
        clock.now = start + (minute * MINUTE)
        new_request(ctx, f"Out of office {n}", AUTO)
    assert acks_to(ctx, CUSTOMER) == []  # automatic mail is never acknowledged
    clock.now = start + mail_at * MINUTE
    new_request(ctx, "A real question")
    assert len(acks_to(ctx, CUSTOMER)) == (0 if held else 1)
    assert any("circuit breaker" in e for e in events(ctx)) == held


def test_breaker_and_limit_follow_the_configuration(ctx: Context, clock: Clock) -> None:
    loops = LoopsConfig(max_auto_mails_per_hour=2, breaker_auto_replies=1)
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, loops=loops))
    new_request(ctx, "One")
    new_request(ctx, "Two")
    new_request(ctx, "Three")
    assert len(acks_to(ctx, CUSTOMER)) == 2
    clock.advance(minutes=61)
    new_request(ctx, "Auto", AUTO)
    new_request(ctx, "Four")
    assert len(acks_to(ctx, CUSTOMER)) == 2
    assert "circuit breaker" in events(ctx)[-1]


def test_limits_count_the_answers_queued_earlier_in_the_same_batch(ctx: Context) -> None:
    """A batch reads each count once, with what earlier batches sent, and counts its own
    answers on: the sixth answer to one address and the desk's eighth are held back, as
    one message at a time."""
    loops = LoopsConfig(max_auto_mails_per_hour=5, max_auto_mails_per_hour_total=7)
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, loops=loops))
    new_request(ctx, "Earlier")
    new_request(ctx, "Earlier still")
    same = [make_mail(subject=f"Question {n}") for n in range(5)]
    others = [make_mail(sender=f"user{n}@other.example", subject="Hello") for n in range(3)]
    stored = accept_many(ctx.store, [Incoming(r, "smtp", ctx.clock()) for r in same + others])
    outcomes = process_batch(ctx, [a.intake_id for a in stored])
    assert [o.created for o in outcomes] == [True] * 8
    assert len(acks_to(ctx, CUSTOMER)) == 5
    assert [a.to_addrs for a in outbox(ctx) if "other.example" in a.to_addrs] == [
        "user0@other.example",
        "user1@other.example",
    ]
    held = events(ctx)
    assert (
        held[:2]
        == [
            f"acknowledgement to {CUSTOMER}: rate limit: 5 automatic mails to {CUSTOMER} "
            "in the last hour"
        ]
        * 2
    )
    assert held[2] == (
        "acknowledgement to user2@other.example: desk limit: 7 automatic mails to all "
        "addresses in the last hour"
    )


# --- the breaker's verdict on stored mail -------------------------------------------------------


def test_processing_notes_the_verdict_the_breaker_would_read(ctx: Context) -> None:
    new_request(ctx, "Out of office", AUTO)
    new_request(ctx, "A real question")
    with ctx.store.session() as session:
        rows = list(session.exec(select(Intake).order_by(col(Intake.id))))
        raws = stored_raws(session, [r.id or 0 for r in rows])
    assert [r.automatic for r in rows] == [True, False]
    assert [r.automatic for r in rows] == [
        is_automatic(raws[r.id or 0][:HEADER_BYTES], r.from_addr) for r in rows
    ]


def test_breaker_reads_the_headers_of_mail_processed_without_a_verdict(
    ctx: Context, clock: Clock
) -> None:
    """Mail processed before the verdict was noted (by a daemon that ran on across the
    upgrade, say) counts as it always did."""
    for n in range(3):
        new_request(ctx, f"Out of office {n}", AUTO)
        clock.advance(minutes=10)
    with ctx.store.session() as session:
        session.execute(update(Intake).values(automatic=None))
    new_request(ctx, "A real question")
    assert acks_to(ctx, CUSTOMER) == []
    assert "circuit breaker" in events(ctx)[-1]


# Where headers end: lines end at CRLF, LF or a lone CR, and the parser stops early at a
# line that is no header. In each case the block must read as the whole head does.
HEADER_ENDS = [
    b"From: a@x.example\r\nAuto-Submitted: auto-replied\r\n\r\nbody\r\nList-Id: <x>\r\n",
    b"From: a@x.example\nSubject: hi\n\nList-Id: <in the body>\n",
    b"From: a@x.example\rPrecedence: bulk\r\rList-Id: <x>",
    b"From: a@x.example\r\n\nList-Id: <x>\n",
    b"From: a@x.example\r\r\nList-Id: <x>\r\n",
    b"From: a@x.example\r\nX-Long: " + b"y" * HEADER_BYTES + b"\r\nList-Id: <x>\r\n\r\n",
    b"\r\nList-Id: <x>\r\n\r\n",
    b"From: a@x.example\r\nnot a header\r\nList-Id: <x>\r\n\r\n",
    b"From: a@x.example\r\nSubject: folded\r\n\r\n continued\r\nPrecedence: list\r\n",
    b"From: a@x.example\r\nPrecedence: list\r\n",
]


@pytest.mark.parametrize("raw", HEADER_ENDS)
def test_header_block_reads_as_the_whole_head(raw: bytes) -> None:
    assert header_block(raw) == raw[: len(header_block(raw))]
    for address in ("a@x.example", "noreply@x.example"):
        assert is_automatic(header_block(raw), address) == is_automatic(raw[:HEADER_BYTES], address)


def test_header_block_reads_as_the_whole_head_across_the_corpus() -> None:
    from email.parser import BytesHeaderParser

    def headers(raw: bytes) -> list[tuple[str, str]]:
        return BytesHeaderParser().parsebytes(raw).items()

    files = sorted(CORPUS.rglob("*.eml"))
    assert files, f"no corpus at {CORPUS}"
    for path in files:
        raw = path.read_bytes()
        assert headers(header_block(raw)) == headers(raw[:HEADER_BYTES]), path.name


# --- display names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        '"support@example.com" <evil@x.example>',
        "=?utf-8?b?c3VwcG9ydEBleGFtcGxlLmNvbQ==?= <evil@x.example>",
    ],
)
def test_display_name_with_an_address_is_hidden_from_staff(ctx: Context, sender: str) -> None:
    staff = StaffConfig(team_address="team@example.com")
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, staff=staff))
    # Written as it is: make_mail would decode the encoded word into an unquoted address,
    # which is an ambiguous From (two addresses), not a display name.
    raw = make_mail(sender="placeholder@example.net")
    raw = raw.replace(b"From: placeholder@example.net", f"From: {sender}".encode())
    assert ingest(ctx, raw).created
    (row,) = [r for r in outbox(ctx) if r.template == "staff_notification"]
    message = parsed(row.raw)
    text = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "Message from <evil@x.example> (display name hidden: contains an address)" in text
    assert "&lt;evil@x.example&gt; (display name hidden: contains an address)" in html
    assert '"support@example.com"' not in text and "support@example.com <" not in text


def test_plain_display_name_is_kept(ctx: Context) -> None:
    staff = StaffConfig(team_address="team@example.com")
    ctx = dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, staff=staff))
    assert ingest(ctx, make_mail()).created
    (row,) = [r for r in outbox(ctx) if r.template == "staff_notification"]
    text = str(parsed(row.raw).get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "Message from Alice Kunde <alice@acme.example>:" in text
    assert "display name hidden" not in text


# --- two instances and two auto-responders ------------------------------------------------------

A, B = "support@a.example", "support@b.example"
POLITE = "robot@responder.example"  # answers everything, with Auto-Submitted, threaded
RUDE = "rude@responder.example"  # answers everything as a fresh mail, with no loop headers
MIRROR = "mirror@responder.example"  # sends whatever it gets straight back, unchanged
RESPONDERS = (POLITE, RUDE, MIRROR)


RELAY_ATTEMPTS = 5


class Switchboard:
    """The network between the parties (an aiosmtpd server both instances relay through):
    mail for a.example goes to A's intake, for b.example to B's, and the two responders
    answer whatever reaches them back to A. It counts every mail that passes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.passed: list[tuple[str, str]] = []  # (envelope sender, recipient)
        self.intakes: dict[str, tuple[str, int]] = {}

    def count(self) -> int:
        with self.lock:
            return len(self.passed)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content
        for rcpt in envelope.rcpt_tos:
            with self.lock:
                self.passed.append((envelope.mail_from, rcpt))
            if rcpt == MIRROR:
                await self._send(MIRROR, A, raw)
            elif rcpt in RESPONDERS:
                await self._send(rcpt, A, answer(raw, rcpt))
            else:
                await self._send(envelope.mail_from, rcpt, raw)
        return "250 2.0.0 Ok"

    async def _send(self, sender: str, rcpt: str, raw: bytes) -> None:
        host, port = self.intakes[rcpt.rpartition("@")[2]] if rcpt != A else self.intakes["a"]
        if sender in RESPONDERS:
            with self.lock:
                self.passed.append((sender, rcpt))
        # As a relay does: an intake's "try again later" (a busy machine) is tried again,
        # not turned into the permanent failure that would end the exchange early.
        for attempt in range(1, RELAY_ATTEMPTS + 1):
            try:
                await aiosmtplib.send(
                    raw, sender=sender, recipients=[rcpt], hostname=host, port=port
                )
                return
            except aiosmtplib.SMTPResponseException as exc:
                if not 400 <= exc.code < 500 or attempt == RELAY_ATTEMPTS:
                    raise
            await asyncio.sleep(0.5)


def answer(raw: bytes, responder: str) -> bytes:
    """An out-of-office answer to `raw`. The polite responder marks and threads it; the rude
    one sends a fresh mail each time, so only the rate limit can stop it."""
    original = message_from_bytes(raw, policy=default)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = responder
    msg["To"] = A
    msg["Message-ID"] = f"<{new_message_id('responder.example')}>"
    if responder == POLITE:
        msg["Subject"] = f"Auto: {original['Subject']}"
        msg["In-Reply-To"] = str(original["Message-ID"])
        msg["Auto-Submitted"] = "auto-replied"
    else:
        msg["Subject"] = f"I am away ({new_message_id()})"
    msg.set_content("I am out of the office.\n")
    return msg.as_bytes()


def instance(tmp_path: Path, served: str, relay_port: int) -> DaemonThread:
    outbound = OutboundConfig(
        transport="smtp", host="127.0.0.1", port=relay_port, from_=f"Support <{served}>"
    )
    cfg = daemon_config(tmp_path, outbound=outbound)
    smtp = dataclasses.replace(cfg.smtp, addresses=[served])
    # Two daemons in one test: /metrics would want one port twice.
    return DaemonThread(dataclasses.replace(cfg, smtp=smtp, http=HttpConfig(listen="")))


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[DaemonThread, DaemonThread, Switchboard]]:
    board = Switchboard()
    with smtp_server(board) as port:
        yield from _instances(tmp_path, board, port)


def _instances(
    tmp_path: Path, board: Switchboard, port: int
) -> Iterator[tuple[DaemonThread, DaemonThread, Switchboard]]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = instance(tmp_path / "a", A, port), instance(tmp_path / "b", B, port)
    board.intakes = {"a": a.address, "a.example": a.address, "b.example": b.address}
    a.start()
    try:
        b.start()
        try:
            yield a, b, board
        finally:
            b.shutdown()
    finally:
        a.shutdown()


def quiet(*daemons: DaemonThread) -> bool:
    """Nothing left to do anywhere: every stored mail processed, nothing waiting to go out.
    The switchboard hands a mail on before it answers, so an unsent row covers mail in
    flight."""
    for daemon in daemons:
        with daemon.ctx.store.session() as session:
            if session.exec(select(Intake.id).where(Intake.status == RECEIVED)).first():
                return False
            if session.exec(select(Outbox.id).where(Outbox.status == QUEUED)).first():
                return False
    return True


def reasons(daemon: DaemonThread) -> list[str]:
    with daemon.ctx.store.session() as session:
        ignored = [r for r in session.exec(select(Intake.reason)) if r]
        auto = session.exec(select(Article.note).where(Article.note == "automatic reply"))
        suppressed = session.exec(select(Event.detail).where(Event.action == "mail_suppressed"))
        return [*ignored, *auto, *suppressed]


def test_two_instances_and_auto_responders_stop_by_themselves(
    network: tuple[DaemonThread, DaemonThread, Switchboard],
) -> None:
    a, b, board = network
    started = time.monotonic()
    for sender in (B, *RESPONDERS):
        submit(make_mail(subject=f"Hello from {sender}", sender=sender, to=A), a.address)
    # Bound: 4 opening mails reach A directly. Through the switchboard: A's acknowledgement
    # to B (B's own acknowledgement is held back: A's mail is Auto-Submitted); to the polite
    # responder and its one marked answer (A files it as an automatic reply, answering
    # nothing); to the mirror and the same mail back (A ignores it: from our own address);
    # and for the rude responder at most max_auto_mails_per_hour acknowledgements and as
    # many answers, as nothing marks them: 1 + 2 + 2 + 2 * 5 = 15.
    bound = 1 + 2 + 2 + 2 * a.config.loops.max_auto_mails_per_hour
    poll(lambda: quiet(a, b), timeout=60, what="the exchange to end")
    elapsed = time.monotonic() - started
    print(
        f"\nloop test: {board.count()} mails through the switchboard (bound {bound}), "
        f"4 opening mails, quiet after {elapsed:.1f}s; by pair: {pairs(board)}"
    )
    assert board.count() <= bound
    b_reasons, a_reasons = reasons(b), reasons(a)
    print(f"A: {a_reasons}\nB: {b_reasons}")
    unsent = [(r.template, r.status, r.last_error) for r in outbox(a.ctx) if r.status != "sent"]
    print(f"A's mail not sent: {unsent}")
    assert "automatic reply" in a_reasons  # the polite responder's answer
    assert f"loop: sent from our own address {A}" in a_reasons  # the mirror's
    assert any("rate limit: 5 automatic mails to " + RUDE in r for r in a_reasons)
    # B took A's acknowledgement as automatic: a ticket, but no acknowledgement back.
    assert len(tickets(b.ctx)) == 1
    assert not [r for r in outbox(b.ctx) if r.template == "acknowledgement"]


def pairs(board: Switchboard) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sender, rcpt in board.passed:
        key = f"{sender}->{rcpt}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def submit(raw: bytes, address: tuple[str, int]) -> None:
    sender = str(message_from_bytes(raw, policy=default)["From"])
    with smtplib.SMTP(*address, timeout=10) as client:
        client.sendmail(sender, [A], raw)


def test_breaker_holds_for_a_fresh_instance_on_the_same_database(
    ctx: Context, clock: Clock
) -> None:
    for n in range(3):
        new_request(ctx, f"Out of office {n}", AUTO)
    # A restarted daemon (or a second instance) has nothing in memory: only the database.
    other = dataclasses.replace(build_context(ctx.config), clock=clock)
    try:
        new_request(other, "A real question")
        assert acks_to(other, CUSTOMER) == []
        assert "circuit breaker" in events(other)[-1]
    finally:
        other.store.dispose()
