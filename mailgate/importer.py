"""Customers and contacts from a CRM or shop CSV export."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from mailgate.agents import find_agent, valid_address
from mailgate.customers import get_or_create_organisation
from mailgate.models import Contact, OrganisationDomain

# Column names as CRMs and shops spell them; the first of each list is the documented one.
COLUMNS: dict[str, tuple[str, ...]] = {
    "organisation": ("organisation", "organization", "company", "firma", "customer"),
    "name": ("contact name", "name", "contact", "kontakt"),
    "email": ("email", "e-mail", "mail", "address"),
    "domain": ("domain", "domains"),
    "agent": ("responsible agent", "agent", "betreuer"),
    "language": ("language", "sprache", "lang"),
}


@dataclass
class ImportReport:
    contacts_created: int = 0
    contacts_updated: int = 0
    organisations: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


class CsvImportError(ValueError):
    """The file as a whole cannot be imported (no header, no e-mail column)."""


def column_map(header: Iterable[str]) -> dict[str, str]:
    """Our field name -> the file's column name."""
    found: dict[str, str] = {}
    for column in header:
        key = column.strip().lower()
        for field_name, spellings in COLUMNS.items():
            if key in spellings and field_name not in found:
                found[field_name] = column
    if "email" not in found:
        expected = ", ".join(COLUMNS["email"])
        raise CsvImportError(f"no e-mail column (expected one of: {expected})")
    return found


def import_row(
    session: Session, row: dict[str, str], cols: dict[str, str], now: datetime, report: ImportReport
) -> None:
    def get(name: str) -> str:
        return (row.get(cols.get(name, ""), "") or "").strip()

    address = valid_address(get("email"))
    if address is None:
        raise ValueError(f"{get('email')!r} is not an e-mail address")
    org_name = get("organisation") or address.rpartition("@")[2]
    org = get_or_create_organisation(session, org_name, now)
    report.organisations.add(org.name)
    domains = (d.strip().lower() for d in get("domain").replace(";", ",").split(","))
    for domain in filter(None, domains):
        if session.get(OrganisationDomain, domain) is None:
            session.add(OrganisationDomain(domain=domain, organisation_id=org.id or 0))
    if get("agent"):
        agent = find_agent(session, get("agent"))
        if agent is None:
            raise ValueError(f"responsible agent {get('agent')!r} is not an agent (add it first)")
        org.responsible_agent_id = agent.id
    contact = session.exec(select(Contact).where(Contact.email == address)).first()
    if contact is None:
        contact = Contact(email=address, organisation_id=org.id or 0, created_at=now)
        report.contacts_created += 1
    else:
        report.contacts_updated += 1
    contact.name = get("name") or contact.name
    contact.organisation_id = org.id or 0
    contact.language = get("language").lower()[:8] or contact.language
    session.add_all([org, contact])
    session.flush()


def import_csv(
    session: Session,
    lines: Iterable[str],
    now: datetime,
    progress: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Import every row; a bad row is reported by its line number and skipped."""
    reader = csv.DictReader(lines, dialect=_sniff_dialect(lines))
    cols = column_map(reader.fieldnames or [])
    report = ImportReport()
    for row in reader:
        try:
            with session.begin_nested():
                import_row(session, row, cols, now, report)
        except ValueError as exc:
            report.errors.append(f"line {reader.line_num}: {exc}")
        progress()
    return report


def _sniff_dialect(lines: Iterable[str]) -> type[csv.Dialect] | str:
    # Excel in German locales writes semicolons; only a list can be peeked at safely.
    if isinstance(lines, list) and lines:
        return "excel-semicolon" if lines[0].count(";") > lines[0].count(",") else "excel"
    return "excel"


class _SemicolonDialect(csv.excel):
    delimiter = ";"


csv.register_dialect("excel-semicolon", _SemicolonDialect)
