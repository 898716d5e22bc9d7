"""A desk of years for the scale benchmark: the search desk's people and mail (search_desk),
its tickets spread over five years in the order of their numbers and resolved within days,
with what years of work leave behind: time booked on answers, every mail sent (outbox and
its recipients) and received (intake), the event log, support hours bought.

The recent desk has the same people and only the last tickets, written from a random
stream of their own: they are the same rows in both desks."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from corpus import _TOPICS
from search_desk import (
    AGENTS,
    SUPPORT,
    Desk,
    Mail,
    Person,
    Rows,
    Writer,
    order_number,
    write_people,
    write_rows,
    write_thread,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # the desk's clock: the commands run at it
YEARS = 5
SPAN = timedelta(days=365 * YEARS)
START = NOW - SPAN
OPEN_DAYS = 4.0  # a request's mean days until staff resolve it
CONFIRM_DAYS = 14  # delivered and unconfirmed this long: closed (auto-close)
RETENTION_DAYS = 90  # the bytes of older mail are gone ([retention]); the rows stay
PACKAGE = 600  # minutes of support an organisation buys at a time
CHUNK = 5000

OUTBOX_COLUMNS = (
    "id",
    "ticket_id",
    "template",
    "envelope_from",
    "to_addrs",
    "subject",
    "message_id",
    "raw",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
    "removed_at",
    "removed_by",
)
INTAKE_COLUMNS = (
    "id",
    "received_at",
    "source",
    "envelope_from",
    "envelope_to",
    "sha256",
    "content_sha256",
    "size",
    "status",
    "reason",
    "attempts",
    "processed_at",
    "message_id",
    "from_addr",
    "automatic",
    "subject",
    "ticket_id",
    "article_id",
    "in_hand_by",
    "deaths",
    "removed_at",
    "removed_by",
)
TIME_COLUMNS = ("id", "ticket_id", "agent_id", "minutes", "billable", "note", "created_at")
EVENT_COLUMNS = ("id", "ticket_id", "actor", "action", "detail", "created_at")
RECIPIENT_COLUMNS = ("outbox_id", "address", "automatic", "created_at")
CONTINGENT_COLUMNS = ("id", "organisation_id", "minutes", "note", "actor", "created_at")
# The same answer as every row's own text would be, in a fraction of the time and space.
NOTES = ("", "", "", "Fernwartung", "remote session", "Telefonat", "on site")


@dataclass(frozen=True)
class Plan:
    """Which of the desk's tickets a database holds: all of them, or only the last
    `recent` (numbers stay: the recent desk's first ticket is the full desk's too)."""

    tickets: int
    recent: int
    seed: int

    @property
    def boundary(self) -> int:
        """The index of the first recent ticket."""
        return self.tickets - self.recent + 1

    def first_recent_day(self) -> datetime:
        """Midnight (UTC) after the first recent ticket was created: every ticket created
        from then on is in both desks."""
        moment = START + SPAN * (self.boundary / self.tickets)
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)


@dataclass
class History(Rows):
    """A chunk's rows beyond the search desk's: what working on the tickets left."""

    time_entries: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    recipients: list[tuple[Any, ...]] = field(default_factory=list)
    intake: list[tuple[Any, ...]] = field(default_factory=list)
    intake_raw: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Ids:
    """The next id of each table a ticket's rows go to."""

    article: int = 1
    time: int = 1
    outbox: int = 1
    intake: int = 1
    event: int = 1


def created_at(rng: random.Random, index: int, tickets: int) -> datetime:
    """Tickets come in the order of their numbers, evenly over the years."""
    return START + SPAN * ((index - 1 + rng.random()) / tickets)


def _status(rng: random.Random, mails: list[Mail]) -> tuple[str, datetime | None]:
    """(status, resolved at): answered requests are resolved within days, an unconfirmed
    delivery closed after CONFIRM_DAYS; the open queue is the last days' requests."""
    age = (NOW - mails[0].at).total_seconds() / 86400
    answered = any(m.staff for m in mails)
    if answered and rng.random() < 1 - math.exp(-age / OPEN_DAYS):
        last = mails[-1].at
        waiting = NOW - last < timedelta(days=CONFIRM_DAYS)
        return ("delivered" if waiting and rng.random() < 0.5 else "closed"), last
    if not answered:
        return "open", None
    return rng.choice(("working", "working", "working", "hold")), None


def _raw(sender: str, to: str, subject: str, message_id: str) -> bytes:
    """A short stand-in for a mail's bytes (the benchmark never reads them)."""
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
    return (head + "\r\nGenerated.\r\n").encode()


def _removed(at: datetime) -> tuple[datetime | None, str]:
    """When retention dropped the bytes of mail of `at`, if it has."""
    if NOW - at <= timedelta(days=RETENTION_DAYS):
        return None, ""
    return at + timedelta(days=RETENTION_DAYS, hours=3.5), "retention"


def _sent(rows: History, ids: Ids, ticket: int, template: str, to: str, mail: Mail) -> None:
    """A mail mailgate sent about the ticket, delivered, kept as the outbox keeps it."""
    oid, at = ids.outbox, mail.at + timedelta(seconds=2)
    ids.outbox += 1
    subject = mail.subject if "[CID-" in mail.subject else f"[CID-{1000 + ticket}] {mail.subject}"
    message_id = f"<mg.{oid}.{1000 + ticket}@example.com>"
    removed_at, removed_by = _removed(at)
    raw = b"" if removed_at else _raw(SUPPORT, to, subject, message_id)
    rows.outbox.append(
        (
            oid,
            ticket,
            template,
            SUPPORT,
            to,
            subject,
            message_id,
            raw,
            "sent",
            1,
            at,
            "",
            at,
            at + timedelta(seconds=1),
            removed_at,
            removed_by,
        )
    )
    rows.recipients.append((oid, to.lower(), template == "acknowledgement", at))


def _received(rows: History, ids: Ids, ticket: int, mail: Mail, sender: str) -> None:
    """The stored message an article was made from, its outcome committed."""
    iid = ids.intake
    ids.intake += 1
    removed_at, removed_by = _removed(mail.at)
    digest = f"{iid:064x}"
    rows.intake.append(
        (
            iid,
            mail.at,
            "smtp",
            sender,
            SUPPORT,
            digest,
            digest,
            18_000 + iid * 7919 % 12_000,  # as big as mail is, not as the stand-in
            "done",
            "",
            1,
            mail.at,
            mail.message_id,
            sender,
            False,
            mail.subject,
            ticket,
            mail.article_id,
            "",
            0,
            removed_at,
            removed_by,
        )
    )
    if removed_at is None:
        rows.intake_raw.append((iid, _raw(sender, SUPPORT, mail.subject, mail.message_id)))


def _event(
    rows: History, ids: Ids, ticket: int, actor: str, action: str, detail: str, at: datetime
) -> None:
    rows.events.append((ids.event, ticket, actor, action, detail, at))
    ids.event += 1


def _history(
    rng: random.Random,
    ticket: int,
    people: tuple[Person, Person],
    mails: list[Mail],
    status: str,
    billable: bool,
    ids: Ids,
    rows: History,
) -> None:
    """Each mail received and the mail it caused, time booked on answers, the events."""
    who, agent = people
    _event(rows, ids, ticket, who.email, "created", "", mails[0].at)
    for n, mail in enumerate(mails):
        _received(rows, ids, ticket, mail, agent.email if mail.staff else who.email)
        if mail.staff:
            _sent(rows, ids, ticket, "staff_answer", who.email, mail)
            if rng.random() < 0.7:
                minutes = rng.choice((5, 10, 15, 15, 30, 30, 45, 60, 90))
                note = rng.choice(NOTES)
                entry = (ids.time, ticket, agent.id, minutes, billable, note, mail.at)
                rows.time_entries.append(entry)
                _event(rows, ids, ticket, agent.email, "time", f"{minutes}m", mail.at)
                ids.time += 1
            continue
        if n == 0:
            _sent(rows, ids, ticket, "acknowledgement", who.email, mail)
        _sent(rows, ids, ticket, "staff_notification", agent.email, mail)
    if status in ("delivered", "closed"):
        _sent(rows, ids, ticket, status, who.email, mails[-1])
        _event(rows, ids, ticket, agent.email, "status", status, mails[-1].at)


def _ticket(rng: random.Random, desk: Desk, index: int, ids: Ids, rows: History) -> None:
    """One ticket of the years: its mail (search_desk), status and history."""
    who = desk.contacts[rng.randrange(len(desk.contacts))]
    agent = desk.agents[rng.randrange(AGENTS)]
    created = created_at(rng, index, desk.tickets)
    topic = rng.choice(_TOPICS[who.language])
    people = (who, agent)
    mails = write_thread(rng, desk, index, people, topic, created, ids.article, rows, NOW)
    ids.article = mails[-1].article_id + 1
    status, resolved = _status(rng, mails)
    billable = rng.random() < 0.3
    last = mails[-1]
    answered = next((m.at for m in mails if m.staff), None)
    rows.tickets.append(
        (
            index,
            1000 + index,
            topic[0],
            status,
            rng.choice("ABBC"),
            rng.choice(("bug", "help", "help", None)),
            rng.choice(("billing", "hardware", "software", None)),
            who.org,
            who.id,
            agent.id if rng.random() < 0.9 else None,
            billable,
            "smtp",
            SUPPORT,
            created,
            last.at,
            "staff" if last.staff else "customer",
            last.at,
            answered,
            resolved,
        )
    )
    if index % 3 == 0:
        rows.references.append((index, order_number(index)))
    _history(rng, index, people, mails, status, billable, ids, rows)


def _write_history(write: Writer, rows: History, counts: Counter[str]) -> None:
    articles, attachments = write_rows(write, rows)
    counts.update(tickets=len(rows.tickets), articles=articles, attachments=attachments)
    counts["time entries"] += write("timeentry", TIME_COLUMNS, iter(rows.time_entries))
    counts["outbox"] += write("outbox", OUTBOX_COLUMNS, iter(rows.outbox))
    write("outbox_recipient", RECIPIENT_COLUMNS, iter(rows.recipients))
    counts["intake"] += write("intake", INTAKE_COLUMNS, iter(rows.intake))
    write("intake_raw", ("intake_id", "raw"), iter(rows.intake_raw))
    counts["events"] += write("event", EVENT_COLUMNS, iter(rows.events))


def contingents(desk: Desk) -> tuple[dict[int, int], list[tuple[Any, ...]]]:
    """Support hours bought: every fourth organisation a package before the years began,
    every eighth another two years in; (minutes by organisation, the contingent rows)."""
    rows: list[tuple[Any, ...]] = []
    for org_id, _, _ in desk.orgs:
        if org_id % 4 == 0:
            rows.append((len(rows) + 1, org_id, PACKAGE, "package", "cli", START))
        if org_id % 8 == 0:
            later = START + timedelta(days=730)
            rows.append((len(rows) + 1, org_id, PACKAGE, "package", "cli", later))
    minutes: Counter[int] = Counter()
    for _, org_id, amount, *_ in rows:
        minutes[org_id] += amount
    return dict(minutes), rows


def write_desk(desk: Desk, plan: Plan, full: bool, write: Writer) -> dict[str, int]:
    """The people and either all the tickets with their history or only the recent ones;
    the rows written of each kind."""
    minutes, bought = contingents(desk)
    write_people(desk, write, minutes)
    write("contingent", CONTINGENT_COLUMNS, iter(bought))
    counts: Counter[str] = Counter(contacts=len(desk.contacts), organisations=len(desk.orgs))
    ids = Ids()
    first = 1 if full else plan.boundary
    rng = random.Random(plan.seed * 1_000_003)
    for start in range(first, plan.tickets + 1, CHUNK):
        rows = History()
        for index in range(start, min(start + CHUNK, plan.tickets + 1)):
            if index == plan.boundary:  # the recent tickets: the same in both desks
                rng = random.Random(plan.seed * 1_000_003 + 1)
            _ticket(rng, desk, index, ids, rows)
        _write_history(write, rows, counts)
    return dict(counts)
