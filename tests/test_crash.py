"""SIGKILL under SMTP load: nothing lost, nothing in two tickets, each mail sent once or twice."""

from __future__ import annotations

import os
import random
import re
import smtplib
import sqlite3
import threading
import time
from collections import Counter
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import SUPPORT, Child, smtp_server, write_config
from tests.helpers import free_port, poll
from tests.mails import make_mail, new_message_id

# The issue asks for a few thousand; the processor, not the intake, sets the pace, so 2,000
# take some 20 s with the killing and restarting. MAILGATE_CRASH_MESSAGES changes it.
MESSAGES = int(os.environ.get("MAILGATE_CRASH_MESSAGES", "2000"))
CLIENTS = 4
FINISHED = ("done", "ignored", "quarantined")


class CountingRelay:
    """The outbound relay: counts what it is handed by Message-ID, and the envelope senders."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_message_id: Counter[str] = Counter()
        self.senders: set[str] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.original_content)
        with self.lock:
            self.by_message_id[str(headers["Message-ID"] or "").strip().strip("<>")] += 1
            self.senders.add(str(envelope.mail_from))
        return "250 2.0.0 Ok"


def send_until_accepted(address: tuple[str, int], raw: bytes, deadline: float) -> int:
    """Deliver like an MTA: retry on connection trouble and 4xx until a final answer."""
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP(*address, timeout=10) as client:
                client.ehlo("client.test")
                code = client.mail("sender@customer.example")[0]
                if code == 250:
                    code = client.rcpt(SUPPORT)[0]
                if code == 250:
                    code = client.data(raw)[0]
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
        except OSError:  # refused, reset, or disconnected: the answer is unknown, send again
            code = 421
        if code < 400 or code >= 500:
            return code
        time.sleep(0.02)  # an MTA's retry backoff, shortened; not waiting for a condition
    return 0


class Clients:
    """CLIENTS threads sending MESSAGES mails; which Message-IDs got 250."""

    def __init__(self, address: tuple[str, int], mails: list[tuple[str, bytes]]) -> None:
        self.address = address
        self.pending = list(mails)
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.refused: list[tuple[str, int]] = []
        self.deadline = time.monotonic() + 240
        self.threads = [threading.Thread(target=self._work) for _ in range(CLIENTS)]

    def _work(self) -> None:
        while True:
            with self.lock:
                if not self.pending:
                    return
                message_id, raw = self.pending.pop()
            code = send_until_accepted(self.address, raw, self.deadline)
            with self.lock:
                if code == 250:
                    self.accepted.append(message_id)
                else:
                    self.refused.append((message_id, code))

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)


def mails(count: int = MESSAGES, prefix: str = "c") -> list[tuple[str, bytes]]:
    """Distinct senders, so no per-address limit on automatic mail holds an acknowledgement."""
    result = []
    for number in range(count):
        message_id = new_message_id()
        raw = make_mail(
            subject=f"Crash test request {number} ({prefix})",
            body=f"Request number {number}: the scanner on floor {number % 7} is jammed.\n",
            sender=f"Customer {number} <{prefix}{number}@org{number % 40}.example>",
            message_id=message_id,
        )
        result.append((message_id, raw))
    return result


def expire_leases(database: Path) -> int:
    """What five minutes would do: rows claimed by a killed run become due again."""
    with sqlite3.connect(database) as conn:
        changed = conn.execute(
            "UPDATE outbox SET next_attempt_at = created_at WHERE status = 'queued'"
        ).rowcount
    conn.close()
    return changed


def all_processed_and_sent(database: Path) -> bool:
    with sqlite3.connect(database) as conn:
        waiting = conn.execute("SELECT count(*) FROM intake WHERE status = 'received'").fetchone()
        queued = conn.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()
    conn.close()
    return waiting[0] == 0 and queued[0] == 0


@pytest.mark.slow
def test_sigkill_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    started, rng = time.monotonic(), random.Random()
    listen = f"127.0.0.1:{free_port()}"
    relay = CountingRelay()
    with smtp_server(relay) as relay_port:
        child = Child(write_config(tmp_path, listen, relay_port), listen, tmp_path / "stderr.log")
        child.start()
        clients = Clients(child.address, mails())
        kill_points = sorted(
            rng.sample(range(MESSAGES // 10, MESSAGES * 9 // 10), rng.randint(3, 5))
        )
        try:
            for thread in clients.threads:
                thread.start()
            for point in kill_points:
                poll(lambda p=point: clients.count() >= p, timeout=120, what=f"{point} accepted")
                time.sleep(rng.uniform(0, 0.2))  # a random moment, not a condition waited for
                child.kill()
                child.start()
            for thread in clients.threads:
                thread.join(timeout=240)
            phases = {"intake": time.monotonic() - started}
            child.stop()
            phases["stop"] = time.monotonic() - started
            # The final, clean run: after what a lease's expiry would do, it sends the rest.
            expired = expire_leases(tmp_path / "mailgate.db")
            child.start()
            poll(
                lambda: all_processed_and_sent(tmp_path / "mailgate.db"),
                timeout=120,
                what="everything processed and sent",
            )
            phases["final"] = time.monotonic() - started
        finally:
            child.stop()
        figures = check_database(tmp_path / "mailgate.db", clients.accepted, relay)
    print(
        f"\ncrash test: {len(clients.accepted)} messages got 250, {len(kill_points)} kills, "
        f"{expired} rows queued at the clean stop, {figures['rows']} outbox rows, "
        f"{figures['duplicates']} sent twice, {time.monotonic() - started:.1f} s {phases}"
    )
    assert clients.refused == []
    assert len(clients.accepted) == MESSAGES


def check_database(database: Path, accepted: list[str], relay: CountingRelay) -> dict[str, int]:
    """Every accepted message has one outcome and at most one article, in one ticket; every
    outbox row reached the relay once or twice, from its VERP envelope sender."""
    with sqlite3.connect(database) as conn:
        intakes = Counter(
            mid
            for mid, status in conn.execute("SELECT message_id, status FROM intake")
            if status in FINISHED
        )
        tickets_by_id: dict[str, set[int]] = {}
        for mid, ticket_id in conn.execute("SELECT message_id, ticket_id FROM article"):
            tickets_by_id.setdefault(mid, set()).add(ticket_id)
        article_count = Counter(mid for (mid,) in conn.execute("SELECT message_id FROM article"))
        rows = list(conn.execute("SELECT id, message_id, envelope_from FROM outbox"))
    conn.close()
    assert [m for m in accepted if intakes[m] != 1] == []
    assert [m for m in accepted if article_count[m] > 1 or len(tickets_by_id.get(m, ())) > 1] == []
    sent = {mid: relay.by_message_id[mid] for _, mid, _ in rows}
    assert {mid: n for mid, n in sent.items() if not 1 <= n <= 2} == {}
    signed = r"support\+bounce-{}-[0-9a-f]{{16}}@example\.com"
    assert all(re.fullmatch(signed.format(row_id), sender) for row_id, _, sender in rows)
    return {"rows": len(rows), "duplicates": sum(1 for n in sent.values() if n == 2)}
