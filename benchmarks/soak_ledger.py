"""The soak's book of what it sent and what came back: every request that should be answered
(a new request by SMTP or IMAP, a customer's `list`), matched to its answer in the sink's
file by In-Reply-To and recipient; and the ticket numbers the answers named."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TAG = re.compile(r"\[CID-(\d+)\]")

SMTP, IMAP, LIST = "smtp", "imap", "list"


@dataclass
class Request:
    message_id: str  # with its angle brackets, as the answer's In-Reply-To names it
    sender: str  # lower case: the answer's envelope recipient
    kind: str  # SMTP, IMAP or LIST
    sent_at: float  # time.time() at the 250 (SMTP) or the APPEND's OK (IMAP)
    subject: str = ""
    answered_at: float | None = None
    ticket: int | None = None  # the number the answer's subject names

    @property
    def latency(self) -> float | None:
        # Never below 0: the answer may be read in the moment between the 250 and its note.
        return None if self.answered_at is None else max(0.0, self.answered_at - self.sent_at)


@dataclass
class Ledger:
    sink: Path  # the JSON lines the relay writes
    requests: dict[str, Request] = field(default_factory=dict)
    # Ticket numbers in the order their acknowledgement arrived, with the request's subject.
    tickets: list[tuple[int, str, str]] = field(default_factory=list)  # number, subject, sender
    sent: Counter[str] = field(default_factory=Counter)  # mail the soak sent, by kind
    refused: Counter[str] = field(default_factory=Counter)  # 4xx/5xx or no connection
    delivered: int = 0  # mail that reached the sink, answers or not
    _offset: int = 0

    def add(self, request: Request) -> None:
        """Before the request is sent (its answer may be read before the 250 is)."""
        self.requests[request.message_id] = request

    def withdraw(self, request: Request) -> None:
        """A request the server refused: nothing will answer it."""
        self.requests.pop(request.message_id, None)

    def ticket_of(self, message_id: str) -> int | None:
        request = self.requests.get(message_id)
        return request.ticket if request else None

    def follow(self) -> None:
        """Read what the sink wrote since the last call (whole lines only)."""
        try:
            with self.sink.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return
        complete = data.rfind(b"\n") + 1
        self._offset += complete
        for line in data[:complete].splitlines():
            self.delivered += 1
            self._match(json.loads(line))

    def _match(self, entry: dict[str, object]) -> None:
        request = self.requests.get(str(entry["in_reply_to"]))
        if request is None or request.answered_at is not None:
            return  # not a request's first answer: a notification, an answer to staff mail
        if request.sender not in entry["rcpt"]:  # type: ignore[operator]
            return  # the staff notification of the same mail
        request.answered_at = float(entry["t"])  # type: ignore[arg-type]
        found = TAG.search(str(entry["subject"]))
        if found and request.kind != LIST:
            request.ticket = int(found[1])
            self.tickets.append((request.ticket, request.subject, request.sender))

    def unanswered(self) -> list[Request]:
        return [r for r in self.requests.values() if r.answered_at is None]
