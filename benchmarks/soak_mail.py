"""What the soak sends: customers' mail from the generated corpus (new requests, and replies
that carry the tag of the ticket their request became), an agent's answers with commands,
and customers asking for their list of tickets."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, default
from email.utils import format_datetime, make_msgid

from corpus import NEW, SUPPORT, Sample, generate_samples
from soak_ledger import LIST, Ledger, Request

AGENT, AGENT_NAME = "jana.schmidt@example.com", "Jana Schmidt"
CHUNK = 120  # generated messages at a time: about 0.3 s of another core's work
WAITING_LIMIT = 500  # replies waiting for their request's ticket number; the oldest go


@dataclass(frozen=True)
class Mail:
    raw: bytes
    sender: str
    kind: str  # new, reply, agent, list
    request: Request | None = None  # what should be answered: new requests and lists


def message_id_of(raw: bytes) -> str:
    return str(BytesHeaderParser(policy=default).parsebytes(raw)["Message-ID"]).strip()


def retag(raw: bytes, subject: str) -> bytes:
    """The message with another Subject (the ticket's real tag)."""
    message = message_from_bytes(raw, policy=SMTP)
    message.replace_header("Subject", subject)
    return message.as_bytes()


class Stream:
    """Generated support mail in chunks, each from a seed of its own, made in another process
    while the chunk before is sent. Tickets are numbered in the order mailgate processes
    the requests, not the corpus's: a reply gets the tag that its request's acknowledgement
    named, and waits (in order) until that has come."""

    def __init__(self, ledger: Ledger, channel: str, seeds: Iterator[int], pool: Executor):
        self.ledger, self.channel, self.seeds, self.pool = ledger, channel, seeds, pool
        self.samples: deque[tuple[int, Sample]] = deque()
        self.waiting: deque[tuple[int, Sample]] = deque()
        self.requests: dict[tuple[int, int], str] = {}  # (seed, corpus number) -> Message-ID
        self.dropped = 0  # replies that waited too long for their ticket
        self.coming = self._order()

    def _order(self) -> tuple[int, Future[list[Sample]]]:
        seed = next(self.seeds)
        return seed, self.pool.submit(generate_samples, CHUNK, seed)

    def _refill(self) -> None:
        seed, samples = self.coming
        self.samples.extend((seed, sample) for sample in samples.result())
        self.coming = self._order()

    def prime(self) -> None:
        """The first chunk, made before the load's clock starts."""
        if not self.samples:
            self._refill()

    def next(self) -> Mail:
        for index, (seed, sample) in enumerate(self.waiting):
            mail = self._reply(seed, sample)
            if mail is not None:
                del self.waiting[index]
                return mail
        while True:
            if not self.samples:
                self._refill()
            seed, sample = self.samples.popleft()
            if sample.kind == NEW:
                return self._new(seed, sample)
            mail = self._reply(seed, sample)
            if mail is not None:
                return mail
            self.waiting.append((seed, sample))
            if len(self.waiting) > WAITING_LIMIT:
                self.waiting.popleft()
                self.dropped += 1

    def _new(self, seed: int, sample: Sample) -> Mail:
        message_id = message_id_of(sample.raw)
        self.requests[(seed, sample.number)] = message_id
        sender = sample.sender.lower()
        request = Request(message_id, sender, self.channel, time.time(), sample.subject)
        return Mail(sample.raw, sender, "new", request)

    def _reply(self, seed: int, sample: Sample) -> Mail | None:
        ticket = self.ledger.ticket_of(self.requests.get((seed, sample.number), ""))
        if ticket is None:
            return None
        subject = sample.subject.replace(f"[CID-{sample.number}]", f"[CID-{ticket}]", 1)
        return Mail(retag(sample.raw, subject), sample.sender.lower(), "reply")


@dataclass(frozen=True)
class Step:
    after: float  # seconds after the step before
    commands: str  # {today}: the date, so that the hold comes due at the next reminder run
    text: str


# An agent's course through a ticket: an answer, an internal note, a hold that comes due
# (the hold reminder goes out), the delivery, the close.
STEPS = (
    Step(0, "#status working #priority A #time 15m billable", "we are looking into it now."),
    Step(10, "#internal #time 5m free", "Driver version differs from the one we ship."),
    Step(10, "#hold {today}", "we are waiting for the vendor and come back to you."),
    Step(90, "#status working #time 20m billable #deliver", "the fix is in place; please confirm."),
    Step(30, "#close", "we are closing this request as agreed."),
)


@dataclass
class Course:
    ticket: int
    subject: str
    step: int
    due: float  # time.monotonic()


class Agent:
    """One agent answering by mail: takes up the newest acknowledged ticket when no ticket in
    hand has a step due, and leads each through STEPS."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.courses: list[Course] = []
        self.taken: set[int] = set()

    def next(self) -> Mail | None:
        now = time.monotonic()
        course = next((c for c in self.courses if c.due <= now), None)
        if course is None:
            course = self._take(now)
            if course is None:
                return None
        step = STEPS[course.step]
        course.step += 1
        if course.step < len(STEPS):
            course.due = now + STEPS[course.step].after
        else:
            self.courses.remove(course)
        return Mail(self._compose(course, step), AGENT, "agent")

    def _take(self, now: float) -> Course | None:
        if not self.ledger.tickets or self.ledger.tickets[-1][0] in self.taken:
            return None
        number, subject, _ = self.ledger.tickets[-1]
        self.taken.add(number)
        course = Course(number, subject, 0, now)
        self.courses.append(course)
        return course

    def _compose(self, course: Course, step: Step) -> bytes:
        today = datetime.now(UTC).date().isoformat()
        message = EmailMessage(policy=SMTP)
        message["From"] = f"{AGENT_NAME} <{AGENT}>"
        message["To"] = SUPPORT
        message["Subject"] = f"Re: [CID-{course.ticket}] {course.subject}"
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain="example.com")
        commands = step.commands.format(today=today)
        message.set_content(f"{commands}\n\nHello,\n\n{step.text}\n\n{AGENT_NAME}\n")
        return message.as_bytes()


class ListAsker:
    """Customers who ask for their open tickets (`list`): the newest acknowledged requester."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def next(self) -> Mail | None:
        if not self.ledger.tickets:
            return None
        sender = self.ledger.tickets[-1][2]
        message = EmailMessage(policy=SMTP)
        message["From"] = sender
        message["To"] = SUPPORT
        message["Subject"] = "list"
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=sender.partition("@")[2])
        message.set_content("Please send me our open requests.\n")
        request = Request(message["Message-ID"], sender, LIST, time.time(), "list")
        return Mail(message.as_bytes(), sender, "list", request)
