"""Time reports: time entries per customer and month, by ticket and agent, with the contingent.

Queries and shaping only; the command line prints, `outbound/sheets.py` builds the workbook."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from mailgate.desk.customers import billable_minutes_of, contingent_minutes_of
from mailgate.moments import aware, local_midnight
from mailgate.store.models import Agent, Contact, Organisation, Ticket, TimeEntry

UNKNOWN_AGENT = "(unknown)"
CSV_COLUMNS = (
    "organisation",
    "month",
    "ticket",
    "subject",
    "status",
    "agent",
    "billable_minutes",
    "free_minutes",
    "minutes",
    "kind",
    "note",
)


class ReportError(ValueError):
    """A report request that cannot be answered, worded for the operator."""


@dataclass(frozen=True)
class Month:
    """A calendar month in the desk's time zone, with its bounds as UTC moments."""

    year: int
    month: int
    timezone: str

    @classmethod
    def parse(cls, text: str, timezone: str) -> Month:
        match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ReportError(f'"{text}" is not a month (YYYY-MM, e.g. 2026-11)')
        return cls(int(match.group(1)), int(match.group(2)), timezone)

    @classmethod
    def containing(cls, moment: datetime, timezone: str) -> Month:
        """The month a moment falls in on the desk's calendar (the current one, given now)."""
        local = moment.astimezone(ZoneInfo(timezone))
        return cls(local.year, local.month, timezone)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return local_midnight(date(self.year, self.month, 1), ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        """The first moment of the next month: entries before it belong to this month."""
        following = (
            date(self.year + 1, 1, 1) if self.month == 12 else date(self.year, self.month + 1, 1)
        )
        return local_midnight(following, ZoneInfo(self.timezone))


def _sums(billable: int, free: int) -> dict[str, int]:
    return {"billable_minutes": billable, "free_minutes": free, "minutes": billable + free}


@dataclass
class _Tally:
    """Billable and free minutes added up for one ticket, agent or organisation."""

    billable: int = 0
    free: int = 0

    def add(self, minutes: int, billable: bool) -> None:
        if billable:
            self.billable += minutes
        else:
            self.free += minutes

    def as_dict(self) -> dict[str, int]:
        return _sums(self.billable, self.free)


def _entries(
    session: Session, month: Month, organisation_id: int | None
) -> list[tuple[TimeEntry, Ticket, Organisation, Agent | None]]:
    query = (
        select(TimeEntry, Ticket, Organisation, Agent)
        .join(Ticket, col(Ticket.id) == col(TimeEntry.ticket_id))
        .join(Organisation, col(Organisation.id) == col(Ticket.organisation_id))
        .join(Agent, col(Agent.id) == col(TimeEntry.agent_id), isouter=True)
        .where(col(TimeEntry.created_at) >= month.start, col(TimeEntry.created_at) < month.end)
        .order_by(col(Organisation.name), col(Ticket.number), col(TimeEntry.id))
    )
    if organisation_id is not None:
        query = query.where(Ticket.organisation_id == organisation_id)
    return list(session.exec(query))  # type: ignore[arg-type]


def _agent_key(agent: Agent | None) -> str:
    return agent.email if agent is not None else UNKNOWN_AGENT


def _agent_order(email: str) -> tuple[bool, str]:
    # Named agents alphabetically, time nobody claimed last.
    return (email == UNKNOWN_AGENT, email)


def _customer_block(
    org: Organisation,
    month: Month,
    prefix: str,
    rows: list[tuple[TimeEntry, Ticket, Agent | None]],
    facts: _Facts,
) -> dict[str, Any]:
    tickets: dict[int, Ticket] = {}
    per_ticket: dict[int, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    corrections: dict[int, list[dict[str, Any]]] = defaultdict(list)
    per_agent: dict[str, _Tally] = defaultdict(_Tally)
    names: dict[str, str] = {UNKNOWN_AGENT: ""}
    overall = _Tally()
    for entry, ticket, agent in rows:
        key = _agent_key(agent)
        names[key] = agent.name if agent is not None else ""
        tickets[ticket.number] = ticket
        # A correction is a row of its own: the customer sees what was booked and what was
        # taken back, and every total is what remains.
        if entry.minutes < 0:
            corrections[ticket.number].append(_correction(entry, key, names[key], month))
        else:
            per_ticket[ticket.number][key].add(entry.minutes, entry.billable)
        per_agent[key].add(entry.minutes, entry.billable)
        overall.add(entry.minutes, entry.billable)

    def agent_rows(tallies: dict[str, _Tally]) -> list[dict[str, Any]]:
        return [
            {"agent": key, "agent_name": names[key], **tallies[key].as_dict()}
            for key in sorted(tallies, key=_agent_order)
        ]

    ticket_rows = []
    for number in sorted(tickets):
        agents = agent_rows(per_ticket[number])
        booked = [*agents, *corrections[number]]
        ticket_rows.append(
            {
                "cid": f"{prefix}-{number}",
                "number": number,
                "subject": tickets[number].subject,
                "status": tickets[number].status,
                "agents": agents,
                "corrections": corrections[number],
                **_sums(
                    sum(a["billable_minutes"] for a in booked),
                    sum(a["free_minutes"] for a in booked),
                ),
            }
        )
    return {
        "organisation": org.name,
        "language": facts.languages.get(org.id or 0),
        "tickets": ticket_rows,
        "agents": agent_rows(per_agent),
        "totals": overall.as_dict(),
        "contingent": facts.contingent(org.id or 0),
    }


def organisation_languages(session: Session, organisation_ids: Sequence[int]) -> dict[int, str]:
    """The language most of each organisation's contacts read (ties: alphabetical), where
    any contact's is known: the language of a workbook sent to the organisation."""
    count = func.count()
    query = (
        select(Contact.organisation_id, Contact.language, count)
        .where(
            col(Contact.organisation_id).in_(organisation_ids),
            col(Contact.language).is_not(None),
        )
        .group_by(col(Contact.organisation_id), col(Contact.language))
        .order_by(col(Contact.organisation_id), count.desc(), col(Contact.language))
    )
    chosen: dict[int, str] = {}
    for org, language, _ in session.exec(query):
        chosen.setdefault(org or 0, language or "")
    return chosen


def _correction(entry: TimeEntry, agent: str, name: str, month: Month) -> dict[str, Any]:
    """A negative time entry as its own report row, dated on the desk's calendar."""
    day = aware(entry.created_at).astimezone(ZoneInfo(month.timezone)).date()
    tally = _Tally()
    tally.add(entry.minutes, entry.billable)
    return {
        "date": day.isoformat(),
        "agent": agent,
        "agent_name": name,
        "note": entry.note,
        **tally.as_dict(),
    }


@dataclass(frozen=True)
class _Facts:
    """What a report's organisations need beside their month's time, read for all of them
    at once: a month of a large desk has thousands, and three queries each took minutes."""

    languages: dict[int, str]
    packages: dict[int, int]  # contingent minutes bought before the month's end
    used: dict[int, int]  # billable minutes booked before the month's end

    def contingent(self, organisation_id: int) -> dict[str, int]:
        """The contingent as it stood at the end of the month: a report of a past month
        reads the same next year."""
        total, used = self.packages.get(organisation_id, 0), self.used.get(organisation_id, 0)
        return {"total_minutes": total, "used_minutes": used, "left_minutes": total - used}


FACTS_AT_ONCE = 5000  # organisations a query asks about (bound parameters are limited)


def _facts(session: Session, organisation_ids: Sequence[int], month: Month) -> _Facts:
    facts = _Facts({}, {}, {})
    for start in range(0, len(organisation_ids), FACTS_AT_ONCE):
        ids = organisation_ids[start : start + FACTS_AT_ONCE]
        facts.languages.update(organisation_languages(session, ids))
        facts.packages.update(contingent_minutes_of(session, ids, before=month.end))
        facts.used.update(billable_minutes_of(session, ids, before=month.end))
    return facts


def time_report(
    session: Session, prefix: str, month: Month, organisation: Organisation | None = None
) -> dict[str, Any]:
    """Time of one organisation in the month (a block even when it has none), or of every
    organisation that has time in the month."""
    grouped: dict[int, list[tuple[TimeEntry, Ticket, Agent | None]]] = defaultdict(list)
    orgs: dict[int, Organisation] = {}
    if organisation is not None:
        orgs[organisation.id or 0] = organisation
        grouped[organisation.id or 0] = []
    for entry, ticket, org, agent in _entries(
        session, month, organisation.id if organisation else None
    ):
        orgs[org.id or 0] = org
        grouped[org.id or 0].append((entry, ticket, agent))
    ordered = sorted(orgs.values(), key=lambda o: o.name)
    facts = _facts(session, [org.id or 0 for org in ordered], month)
    return {
        "month": month.label,
        "timezone": month.timezone,
        "customers": [
            _customer_block(org, month, prefix, grouped[org.id or 0], facts) for org in ordered
        ],
    }


def csv_text(report: dict[str, Any]) -> str:
    """One row per ticket and agent, minutes as integers: for scripts and spreadsheets."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for block in report["customers"]:
        for ticket in block["tickets"]:
            labels = [block["organisation"], report["month"], ticket["cid"], ticket["subject"]]
            for agent in ticket["agents"]:
                writer.writerow([*labels, ticket["status"], *_csv_minutes(agent), "booked", ""])
            for fix in ticket["corrections"]:
                row = [*labels, ticket["status"], *_csv_minutes(fix), "correction", fix["note"]]
                writer.writerow(row)
    return buffer.getvalue()


def _csv_minutes(row: dict[str, Any]) -> list[object]:
    return [row["agent"], row["billable_minutes"], row["free_minutes"], row["minutes"]]


def default_filename(report: dict[str, Any], customer: str | None) -> str:
    """time-ORG-2026-11.xlsx for one customer, time-2026-11.xlsx for all of them."""
    if customer is None:
        return f"time-{report['month']}.xlsx"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", report["customers"][0]["organisation"]).strip("_.")
    return f"time-{safe or 'customer'}-{report['month']}.xlsx"
