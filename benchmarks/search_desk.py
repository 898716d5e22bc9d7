"""A large generated desk for the search benchmark: organisations, contacts, agents, tickets
and their mail (German and English), written straight into the tables by bulk inserts."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from corpus import (
    _CITIES,
    _CLOSING,
    _DETAILS,
    _DISCLAIMER,
    _FIRST,
    _FOLLOW,
    _GREETING,
    _LAST,
    _ORG_FIRST,
    _ORG_SECOND,
    _PDF_NAMES,
    _PNG_NAMES,
    _STREETS,
    _TLD_DE,
    _TLD_EN,
    _TOPICS,
    ascii_fold,
)

END = datetime(2026, 12, 1, tzinfo=UTC)
START = END - timedelta(days=730)  # two years of mail
AGENTS = 40
BLOBS = 500
RARE_WORD = "Kondensatorschaden"  # planted in about one article in RARE_EVERY
RARE_EVERY = 50_000
SUPPORT = "support@example.com"
# One callable writes a table: (table, columns, rows as tuples) -> rows written.
Writer = Callable[[str, tuple[str, ...], Iterator[tuple[Any, ...]]], int]

_ANSWERS = {
    "de": (
        "vielen Dank für Ihre Nachricht. Wir haben uns das angesehen und den Fehler behoben.",
        "wir haben die Konfiguration angepasst. Bitte prüfen Sie, ob es jetzt wieder geht.",
        "könnten Sie uns bitte einen Screenshot der Fehlermeldung schicken?",
        "der Techniker ist morgen ab 9 Uhr bei Ihnen vor Ort.",
        "die Rechnung wurde korrigiert, die Gutschrift geht Ihnen per Post zu.",
        "das Update ist eingespielt, der Drucker sollte wieder drucken.",
    ),
    "en": (
        "thank you for your message. We looked into it and fixed the error.",
        "we adjusted the configuration. Please check whether it works again now.",
        "could you please send us a screenshot of the error message?",
        "our technician will be on site tomorrow from 9 am.",
        "the invoice has been corrected, the credit note is on its way.",
        "the update is installed, the printer should print again.",
    ),
}
_DEPARTMENTS = ("Einkauf", "IT-Koordination", "Buchhaltung", "Operations", "Office")
_STATUSES_DONE = ("closed", "closed", "delivered")
_STATUSES_OPEN = ("open", "open", "working", "hold")


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    email: str
    org: int  # organisation id (0 for agents)
    language: str
    signature: str


@dataclass(frozen=True)
class Desk:
    """What the generator made, enough to choose the benchmark's queries from."""

    tickets: int
    orgs: list[tuple[int, str, str]]  # (id, name, domain)
    contacts: list[Person]
    agents: list[Person]


def order_number(index: int) -> str:
    """Ticket index -> its order number, distinct for every index below 900,000."""
    return f"AB-{100000 + index * 7919 % 900000}"


def invoice_file(index: int) -> str:
    return f"Rechnung_RE-{2025 + index % 2}-{index:06d}.pdf"


def _signature(rng: random.Random, name: str, org: str, domain: str, language: str) -> str:
    lines = [
        "-- ",
        name,
        rng.choice(_DEPARTMENTS),
        org,
        f"{rng.choice(_STREETS)} {rng.randint(1, 140)}",
        rng.choice(_CITIES),
        f"Tel. +49 {rng.randint(30, 999)} {rng.randint(100000, 9999999)}-{rng.randint(10, 99)}",
        f"https://www.{domain}",
    ]
    if rng.random() < 0.3:
        lines += ["", _DISCLAIMER[language]]
    return "\n".join(lines)


def make_desk(tickets: int, seed: int) -> Desk:
    """The people: an organisation per 20 tickets, a contact per 5, 40 agents."""
    rng = random.Random(seed)
    orgs, contacts, taken = [], [], set()
    languages = []
    for index in range(1, max(1, tickets // 20) + 1):
        first, second = rng.choice(_ORG_FIRST), rng.choice(_ORG_SECOND)
        language = "de" if rng.random() < 0.65 else "en"
        tld = rng.choice(_TLD_DE if language == "de" else _TLD_EN)
        domain = f"{ascii_fold(first)}-{ascii_fold(second)}{index}{tld}"
        suffix = "GmbH" if language == "de" else "Ltd"
        orgs.append((index, f"{first} {second} {index} {suffix}", domain))
        languages.append(language)
    for index in range(1, max(1, tickets // 5) + 1):
        org_id, org_name, domain = orgs[rng.randrange(len(orgs))]
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{ascii_fold(first)}.{ascii_fold(last)}@{domain}"
        if email in taken:
            email = f"{ascii_fold(first)}.{ascii_fold(last)}{index}@{domain}"
        taken.add(email)
        language = languages[org_id - 1]
        name = f"{first} {last}"
        signature = _signature(rng, name, org_name, domain, language)
        contacts.append(Person(index, name, email, org_id, language, signature))
    agents = []
    for index in range(1, AGENTS + 1):
        first, last = _FIRST[index % len(_FIRST)], _LAST[index * 7 % len(_LAST)]
        email = f"{ascii_fold(first)}.{ascii_fold(last)}{index}@example.com"
        name = f"{first} {last}"
        agents.append(Person(index, name, email, 0, "de", f"{name}\nSupport-Team"))
    return Desk(tickets, orgs, contacts, agents)


def write_people(desk: Desk, write: Writer, minutes: dict[int, int] | None = None) -> None:
    """Agents, organisations (with `minutes` of support bought, by id) and their domains,
    contacts, and the attachments' blobs."""
    start = START - timedelta(days=30)
    minutes = minutes or {}
    write(
        "agent",
        ("id", "email", "name", "notify", "active", "created_at", "endings"),
        iter((a.id, a.email, a.name, True, True, start, "") for a in desk.agents),
    )
    write(
        "organisation",
        ("id", "name", "support_minutes", "kind", "created_at"),
        iter((o[0], o[1], minutes.get(o[0], 0), "company", start) for o in desk.orgs),
    )
    write(
        "organisationdomain", ("domain", "organisation_id"), iter((o[2], o[0]) for o in desk.orgs)
    )
    write(
        "contact",
        (
            "id",
            "email",
            "name",
            "organisation_id",
            "language",
            "failing",
            "opted_out",
            "created_at",
        ),
        iter(
            (c.id, c.email, c.name, c.org, c.language, False, False, start) for c in desk.contacts
        ),
    )
    write(
        "blob",
        ("sha256", "size", "path"),
        iter((f"{n:064x}", 20_000 + n, f"{n:064x}"[:2] + f"/{n:064x}") for n in range(BLOBS)),
    )


# Mail text ----------------------------------------------------------------------------------


def _quote(text: str, limit: int = 600) -> str:
    """The start of the earlier mail, quoted: most clients quote it all, most of it is cut."""
    return "\n".join(f"> {line}" if line else ">" for line in text[:limit].splitlines())


def _request(rng: random.Random, who: Person, thing: str, index: int) -> str:
    lang = who.language
    details = " ".join(d.format(thing=thing) for d in rng.sample(_DETAILS[lang], rng.randint(2, 5)))
    parts = [f"{rng.choice(_GREETING[lang])},", details]
    if index % 3 == 0:
        label = "Unsere Bestellnummer" if lang == "de" else "Our order number"
        parts.append(f"{label}: {order_number(index)}")
    if rng.randrange(RARE_EVERY) == 0:
        parts.append(f"Vermutlich ein {RARE_WORD} am Netzteil.")
    parts += [rng.choice(_CLOSING[lang]), who.signature]
    return "\n\n".join(parts) + "\n"


def _answer(rng: random.Random, agent: Person, who: Person, earlier: str, when: datetime) -> str:
    lang = who.language
    hello = f"Hallo {who.name}" if lang == "de" else f"Dear {who.name}"
    said = f"Am {when:%d.%m.%Y} schrieb {who.name}:" if lang == "de" else f"{who.name} wrote:"
    own = f"{hello},\n\n{rng.choice(_ANSWERS[lang])}\n\n{rng.choice(_CLOSING[lang])}"
    return f"{own}\n{agent.signature}\n\n{said}\n{_quote(earlier)}\n"


def _follow_up(rng: random.Random, who: Person, earlier: str) -> str:
    lang = who.language
    own = f"{rng.choice(_GREETING[lang])},\n\n{rng.choice(_FOLLOW[lang])}"
    said = "Support schrieb:" if lang == "de" else "Support wrote:"
    return f"{own}\n\n{rng.choice(_CLOSING[lang])}\n{who.name}\n\n{said}\n{_quote(earlier)}\n"


# Tickets and articles -----------------------------------------------------------------------

TICKET_COLUMNS = (
    "id",
    "number",
    "subject",
    "status",
    "priority",
    "type",
    "category",
    "organisation_id",
    "requester_id",
    "assignee_id",
    "billable",
    "source",
    "served_address",
    "created_at",
    "updated_at",
    "last_action_by",
    "last_action_at",
    "first_response_at",
    "resolved_at",
)
ARTICLE_COLUMNS = (
    "id",
    "ticket_id",
    "direction",
    "from_addr",
    "from_name",
    "to_addrs",
    "cc_addrs",
    "subject",
    "date",
    "message_id",
    "text",
    "note",
    "created_at",
)
ATTACHMENT_COLUMNS = ("article_id", "filename", "content_type", "size", "sha256", "inline")


@dataclass
class Rows:
    """The rows of one chunk of tickets, table by table."""

    tickets: list[tuple[Any, ...]] = field(default_factory=list)
    articles: list[tuple[Any, ...]] = field(default_factory=list)
    attachments: list[tuple[Any, ...]] = field(default_factory=list)
    references: list[tuple[Any, ...]] = field(default_factory=list)


def _attachment(rng: random.Random, article_id: int, index: int) -> tuple[Any, ...]:
    if index % 5 == 0:
        name, kind = invoice_file(index), "application/pdf"
    elif rng.random() < 0.5:
        name, kind = rng.choice(_PDF_NAMES), "application/pdf"
    else:
        name, kind = rng.choice(_PNG_NAMES), "image/png"
    blob = rng.randrange(BLOBS)
    return (article_id, name, kind, 20_000 + blob, f"{blob:064x}", False)


@dataclass(frozen=True)
class Mail:
    """One article of a generated thread: what a desk's history (time booked on answers,
    mail sent and received) is made from."""

    article_id: int
    staff: bool
    at: datetime
    message_id: str
    subject: str


def write_thread(
    rng: random.Random,
    desk: Desk,
    index: int,
    people: tuple[Person, Person],
    topic: tuple[str, str],
    created: datetime,
    article_id: int,
    rows: Rows,
    until: datetime | None = None,
) -> list[Mail]:
    """The articles of ticket `index` (a request, then answers and follow-ups in turn, two
    to six in all; none after `until`) into `rows`; returns them in order."""
    who, agent = people
    subject, thing = topic
    at, text = created, _request(rng, who, thing, index)
    tag = f"[CID-{1000 + index}] {subject}"
    mails: list[Mail] = []
    for n in range(rng.choice((2, 3, 4, 5, 6))):
        staff = n % 2 == 1
        if n:
            at += timedelta(hours=rng.expovariate(1 / 20))
            if until is not None and at > until:
                break
            text = _answer(rng, agent, who, text, at) if staff else _follow_up(rng, who, text)
        sender = agent if staff else who
        prefix = "" if n == 0 else ("AW: " if who.language == "de" else "Re: ")
        line = f"{prefix}{tag}" if n else subject
        message_id = f"<{index}.{n}.{rng.getrandbits(40):010x}@bench.example>"
        rows.articles.append(
            (
                article_id,
                index,
                "staff" if staff else "customer",
                SUPPORT if staff else who.email,
                sender.name,
                who.email if staff else SUPPORT,
                "",
                line,
                at,
                message_id,
                text,
                "",
                at,
            )
        )
        if not staff and rng.random() < 0.2:
            rows.attachments.append(_attachment(rng, article_id, index))
        mails.append(Mail(article_id, staff, at, message_id, line))
        article_id += 1
    return mails


def _ticket_rows(rng: random.Random, desk: Desk, index: int, article_id: int, rows: Rows) -> int:
    """One ticket with its two to six articles; returns the next article id."""
    who = desk.contacts[rng.randrange(len(desk.contacts))]
    agent = desk.agents[rng.randrange(AGENTS)]
    created = START + timedelta(seconds=rng.uniform(0, 730 * 86400))
    subject, thing = rng.choice(_TOPICS[who.language])
    number = 1000 + index
    done = rng.random() < min(0.95, (END - created).days / 20)
    status = rng.choice(_STATUSES_DONE if done else _STATUSES_OPEN)
    mails = write_thread(
        rng, desk, index, (who, agent), (subject, thing), created, article_id, rows
    )
    at = mails[-1].at
    answered = next((m.at for m in mails if m.staff), None)
    resolved = at if done else None
    assignee = agent.id if rng.random() < 0.9 else None
    rows.tickets.append(
        (
            index,
            number,
            subject,
            status,
            rng.choice("ABBC"),
            rng.choice(("bug", "help", "help", None)),
            rng.choice(("billing", "hardware", "software", None)),
            who.org,
            who.id,
            assignee,
            rng.random() < 0.3,
            "smtp",
            SUPPORT,
            created,
            at,
            "staff" if answered and at == answered else "customer",
            at,
            answered,
            resolved,
        )
    )
    if index % 3 == 0:
        rows.references.append((index, order_number(index)))
    return mails[-1].article_id + 1


def write_rows(write: Writer, rows: Rows) -> tuple[int, int]:
    """A chunk's tickets, articles, attachments and order numbers; (articles, attachments)."""
    write("ticket", TICKET_COLUMNS, iter(rows.tickets))
    articles = write("article", ARTICLE_COLUMNS, iter(rows.articles))
    attachments = write("attachment", ATTACHMENT_COLUMNS, iter(rows.attachments))
    write("ticketreference", ("ticket_id", "reference"), iter(rows.references))
    return articles, attachments


def write_tickets(desk: Desk, seed: int, write: Writer, chunk: int = 5000) -> tuple[int, int]:
    """Every ticket with its articles, attachments and order numbers, a chunk at a time;
    returns (articles, attachments) written."""
    rng = random.Random(seed * 1_000_003)
    article_id, articles, attachments = 1, 0, 0
    for first in range(1, desk.tickets + 1, chunk):
        rows = Rows()
        for index in range(first, min(first + chunk, desk.tickets + 1)):
            article_id = _ticket_rows(rng, desk, index, article_id, rows)
        written = write_rows(write, rows)
        articles, attachments = articles + written[0], attachments + written[1]
    return articles, attachments
