"""`mailgate export`: the tickets a filter selects, with their articles' metadata, as .xlsx
or .csv. Streamed: tickets are read in batches and rows written as they come, so memory stays
flat however many tickets there are."""

from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.config import Config
from mailgate.desk import lookups, sla
from mailgate.moments import aware
from mailgate.outbound.sheets import _cell as sheet_value
from mailgate.reading import tags
from mailgate.reports.filters import TicketFilter, with_found
from mailgate.reports.listing import ticket_fields
from mailgate.reports.selection import select_tickets, ticket_query
from mailgate.store.models import (
    Agent,
    Article,
    Attachment,
    Contact,
    Organisation,
    Ticket,
)

BATCH = 500

# (key, heading): csv headers are the keys, the xlsx sheet shows the headings. Times: CSV
# ISO 8601 in UTC; xlsx the desk's wall clock, the zone in the heading instead of "(UTC)".
TICKET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cid", "Ticket"),
    ("number", "Number"),
    ("subject", "Subject"),
    ("status", "Status"),
    ("priority", "Priority"),
    ("type", "Type"),
    ("category", "Category"),
    ("customer", "Customer"),
    ("requester", "Requester"),
    ("assignee", "Assignee"),
    ("agents", "Further agents"),
    ("references", "References"),
    ("linked_ticket", "Linked ticket"),
    ("billable", "Billable"),
    ("source", "Source"),
    ("served_address", "Served address"),
    ("created_at", "Created (UTC)"),
    ("updated_at", "Updated (UTC)"),
    ("first_response_at", "First response (UTC)"),
    ("resolved_at", "Resolved (UTC)"),
    ("last_action_by", "Last action by"),
    ("last_action_at", "Last action (UTC)"),
    ("hold_until", "Hold until (UTC)"),
    ("sla_due_at", "SLA due (UTC)"),
    ("sla_breached", "SLA breached"),
    ("billable_minutes", "Billable minutes"),
    ("free_minutes", "Free minutes"),
    ("articles", "Articles"),
)
ARTICLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cid", "Ticket"),
    ("article_id", "Article"),
    ("direction", "Direction"),
    ("from", "From"),
    ("to", "To"),
    ("cc", "Cc"),
    ("subject", "Subject"),
    ("date", "Date (UTC)"),
    ("message_id", "Message-ID"),
    ("note", "Note"),
    ("attachments", "Attachments"),
    ("created_at", "Created (UTC)"),
)


@dataclass
class Counts:
    tickets: int = 0
    articles: int = 0


class Sink:
    """Where rows go: a workbook with two sheets, or one CSV table."""

    def tickets(self, row: dict[str, Any]) -> None: ...

    def articles(self, row: dict[str, Any]) -> None: ...

    @property
    def wants_articles(self) -> bool:
        return True


class XlsxSink(Sink):
    """Both sheets, for people: times as the desk's wall clock (Excel has no time zones),
    the zone named in each time's heading."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        # write_only: each sheet streams to a temporary file instead of living in memory.
        self.book = Workbook(write_only=True)
        self.ticket_sheet = self._sheet("tickets", TICKET_COLUMNS)
        self.article_sheet = self._sheet("articles", ARTICLE_COLUMNS)

    def _sheet(self, title: str, columns: tuple[tuple[str, str], ...]) -> WriteOnlyWorksheet:
        sheet = self.book.create_sheet(title)
        sheet.freeze_panes = "A2"
        sheet.append([heading.replace("(UTC)", f"({self.zone.key})") for _, heading in columns])
        return sheet

    def _append(
        self, sheet: WriteOnlyWorksheet, columns: tuple[tuple[str, str], ...], row: dict
    ) -> None:
        sheet.append([self._value(sheet, row.get(key)) for key, _ in columns])

    def _value(self, sheet: WriteOnlyWorksheet, value: object) -> object:
        if isinstance(value, datetime):
            value = aware(value).astimezone(self.zone).replace(tzinfo=None)
        value = sheet_value(value)
        if isinstance(value, str) and value.startswith("="):
            # A subject like "=HYPERLINK(...)" is data, never a formula in the reader's program.
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"
            return cell
        return value

    def tickets(self, row: dict[str, Any]) -> None:
        self._append(self.ticket_sheet, TICKET_COLUMNS, row)

    def articles(self, row: dict[str, Any]) -> None:
        self._append(self.article_sheet, ARTICLE_COLUMNS, row)

    def save(self, stream: IO[bytes]) -> None:
        self.book.save(stream)

    def discard(self) -> None:
        """Finish the sheets' temporary files after a failure; nothing is saved."""
        for sheet in self.book.worksheets:
            if not sheet.closed:
                with contextlib.suppress(Exception):
                    sheet.close()


class CsvSink(Sink):
    """The tickets table, or with `articles_only` the articles table instead."""

    def __init__(self, stream: IO[str], articles_only: bool) -> None:
        self.articles_only = articles_only
        columns = ARTICLE_COLUMNS if articles_only else TICKET_COLUMNS
        self.writer = csv.DictWriter(stream, [k for k, _ in columns], extrasaction="ignore")
        self.writer.writeheader()

    def _write(self, row: dict[str, Any]) -> None:
        self.writer.writerow({k: _text(v) for k, v in row.items()})

    def tickets(self, row: dict[str, Any]) -> None:
        if not self.articles_only:
            self._write(row)

    def articles(self, row: dict[str, Any]) -> None:
        if self.articles_only:
            self._write(row)

    @property
    def wants_articles(self) -> bool:
        return self.articles_only


def _text(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return aware(value).isoformat()
    return value


def count(session: Session, flt: TicketFilter, cfg: Config, now: datetime) -> int:
    """How many tickets the filter selects (before an exact business-day SLA check)."""
    query = (
        ticket_query(with_found(session, flt, cfg.tickets.timezone), cfg, now)
        .order_by(None)
        .subquery()
    )
    return int(session.exec(select(func.count()).select_from(query)).one())


def export(
    session: Session,
    cfg: Config,
    flt: TicketFilter,
    now: datetime,
    sink: Sink,
    tick: Callable[[], None] = lambda: None,
) -> Counts:
    """Write the filter's tickets (and their articles, if the sink wants them) to the sink."""
    counts, calendar = Counts(), sla.Calendar.of(cfg)
    for tickets in select_tickets(session, flt, cfg, now, batch=BATCH):
        extra = _Lookups.load(session, cfg.tickets.prefix, tickets, sink.wants_articles)
        for ticket in tickets:
            sink.tickets(extra.ticket_row(cfg, calendar, ticket, now))
            for row in extra.articles.get(ticket.id or 0, ()):
                sink.articles(row)
                counts.articles += 1
            counts.tickets += 1
            tick()
    return counts


@dataclass
class _Lookups:
    """What one batch of tickets needs from other tables, read with one query each."""

    orgs: dict[int, str]
    contacts: dict[int, str]
    agents: dict[int, str]
    further: dict[int, list[Agent]]
    references: dict[int, list[str]]
    linked: dict[int, str]
    minutes: dict[tuple[int, bool], int]
    article_counts: dict[int, int]
    articles: dict[int, list[dict[str, Any]]]

    @classmethod
    def load(
        cls, session: Session, prefix: str, tickets: list[Ticket], with_articles: bool
    ) -> _Lookups:
        ids = [t.id or 0 for t in tickets]
        org_ids = {t.organisation_id for t in tickets}
        return cls(
            orgs=_pairs(session, Organisation.id, Organisation.name, org_ids),
            contacts=_pairs(session, Contact.id, Contact.email, {t.requester_id for t in tickets}),
            agents=_pairs(
                session, Agent.id, Agent.email, {t.assignee_id for t in tickets if t.assignee_id}
            ),
            further=lookups.further_agents(session, ids),
            references=lookups.references(session, ids),
            linked=lookups.linked(session, prefix, tickets),
            minutes=lookups.minutes(session, ids),
            article_counts=_article_counts(session, ids),
            articles=_articles(session, prefix, ids) if with_articles else {},
        )

    def ticket_row(
        self, cfg: Config, calendar: sla.Calendar, t: Ticket, now: datetime
    ) -> dict[str, Any]:
        tid, target = t.id or 0, sla.first_response(cfg, calendar, t, now)
        return {
            **ticket_fields(t, cfg.tickets.prefix, self.orgs, self.contacts, self.agents),
            "agents": ", ".join(a.email for a in self.further.get(tid, [])),
            "references": lookups.REFERENCE_SEPARATOR.join(self.references.get(tid, [])),
            "linked_ticket": self.linked.get(tid),
            "billable": t.billable,
            "source": t.source,
            "served_address": t.served_address,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "first_response_at": t.first_response_at,
            "resolved_at": t.resolved_at,
            "last_action_by": t.last_action_by,
            "last_action_at": t.last_action_at,
            "hold_until": t.hold_until,
            "sla_due_at": target.due_at,
            "sla_breached": target.breached if target.due_at else None,
            "billable_minutes": self.minutes.get((tid, True), 0),
            "free_minutes": self.minutes.get((tid, False), 0),
            "articles": self.article_counts.get(tid, 0),
        }


def _pairs(session: Session, key: Any, value: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.exec(select(key, value).where(col(key).in_(ids))).all())


def _article_counts(session: Session, ids: list[int]) -> dict[int, int]:
    query = (
        select(Article.ticket_id, func.count())
        .where(col(Article.ticket_id).in_(ids))
        .group_by(col(Article.ticket_id))
    )
    return dict(session.exec(query).all())


def _articles(session: Session, prefix: str, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each ticket's articles, metadata only: the bodies are never read."""
    files = (
        select(Attachment.article_id, func.count().label("files"))
        .join(Article, col(Article.id) == col(Attachment.article_id))
        .where(col(Article.ticket_id).in_(ids))
        .group_by(col(Attachment.article_id))
    )
    attachments = dict(session.exec(files).all())
    query = (
        select(
            Article.id,
            Article.ticket_id,
            Ticket.number,
            Article.direction,
            Article.from_addr,
            Article.to_addrs,
            Article.cc_addrs,
            Article.subject,
            Article.date,
            Article.message_id,
            Article.note,
            Article.created_at,
        )
        .join(Ticket, col(Ticket.id) == col(Article.ticket_id))
        .where(col(Article.ticket_id).in_(ids))
        .order_by(col(Article.id))
    )
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (
        aid,
        tid,
        number,
        direction,
        sender,
        to,
        cc,
        subject,
        date,
        mid,
        note,
        created,
    ) in session.exec(query):
        found[tid].append(
            {
                "cid": tags.cid(prefix, number),
                "article_id": aid,
                "direction": direction,
                "from": sender,
                "to": to,
                "cc": cc,
                "subject": subject,
                "date": date,
                "message_id": mid,
                "note": note,
                "attachments": attachments.get(aid, 0),
                "created_at": created,
            }
        )
    return found


def write_file(
    session: Session,
    cfg: Config,
    flt: TicketFilter,
    now: datetime,
    path: Path,
    fmt: str,
    articles_only: bool = False,
    tick: Callable[[], None] = lambda: None,
) -> Counts:
    """Export into PATH. Written beside it first and renamed at the end, so a failed or
    interrupted export never leaves a half-written file under the requested name."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        if fmt == "xlsx":
            # The file is opened first, so that an unwritable place fails before the work.
            with partial.open("wb") as stream:
                book = XlsxSink(cfg.tickets.timezone)
                try:
                    counts = export(session, cfg, flt, now, book, tick)
                    book.save(stream)
                except BaseException:
                    book.discard()
                    raise
        else:
            with partial.open("w", newline="", encoding="utf-8") as stream:
                counts = export(session, cfg, flt, now, CsvSink(stream, articles_only), tick)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return counts
