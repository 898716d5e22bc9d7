"""Customers and contacts from a CRM or shop CSV export, as Excel and CRMs write them."""

from __future__ import annotations

import codecs
import copy
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from mailgate.config import CustomersConfig
from mailgate.desk.agents import find_agent
from mailgate.desk.claims import ClaimError, claim, move_contact
from mailgate.desk.customers import personal_organisation
from mailgate.reading.addresses import valid_address
from mailgate.store.models import COMPANY, Contact, Organisation, OrganisationDomain

# Column names as CRMs, shops and German Excel spell them (compared in lower case); the
# first of each list is the documented one.
COLUMNS: dict[str, tuple[str, ...]] = {
    "organisation": (
        "organisation", "organization", "company", "company name", "customer", "account",
        "firma", "firmenname", "unternehmen", "kunde", "organisation name",
    ),
    "name": (
        "contact name", "name", "contact", "full name", "kontakt", "ansprechpartner",
        "ansprechpartnerin", "kontaktperson", "vollständiger name",
    ),
    "first_name": ("first name", "firstname", "vorname"),
    "last_name": ("last name", "lastname", "surname", "nachname"),
    "email": (
        "email", "e-mail", "mail", "address", "email address", "e-mail address",
        "e-mail-adresse", "emailadresse", "mailadresse",
    ),
    "domain": ("domain", "domains", "domäne", "domänen", "mail domain", "maildomain"),
    "agent": (
        "responsible agent", "agent", "betreuer", "betreuerin", "zuständig", "verantwortlich",
        "account manager",
    ),
    "language": ("language", "sprache", "lang"),
}  # fmt: skip
# Excel's "CSV (Trennzeichen-getrennt)" in German locales: Windows-1252 and semicolons.
_FALLBACK_ENCODING = "cp1252"


@dataclass
class ImportReport:
    """What an import really did: made, found already there, and skipped (by line)."""

    organisations_created: set[str] = field(default_factory=set)
    organisations_found: set[str] = field(default_factory=set)
    contacts_created: int = 0
    contacts_found: int = 0
    domains_claimed: int = 0
    errors: list[str] = field(default_factory=list)

    def restore(self, earlier: ImportReport) -> None:
        """Back to what it said before a row that was rolled back."""
        self.__dict__.update(copy.deepcopy(earlier).__dict__)

    def lines(self) -> list[str]:
        found = self.organisations_found - self.organisations_created
        return [
            f"organisations: {len(self.organisations_created)} created, {len(found)} already there",
            f"contacts: {self.contacts_created} created, {self.contacts_found} already there",
            f"domains claimed: {self.domains_claimed}",
            f"rows skipped: {len(self.errors)}",
        ]


class CsvImportError(ValueError):
    """The file as a whole cannot be imported (no header, no e-mail column)."""


@dataclass(frozen=True)
class Rows:
    """The file's rows as dicts of its own column names, each with its line number."""

    columns: dict[str, str]  # our field name -> the file's column name
    rows: list[tuple[int, dict[str, str]]]


def decode(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), UTF-16 with one, else Windows-1252."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode(_FALLBACK_ENCODING, errors="replace")


def _dialect(text: str) -> type[csv.Dialect]:
    """Excel's dialect with the separator the header line uses most: `;` (German Excel),
    `,` or a tab. Only the header is looked at: names and notes in the rows hold commas."""
    header = text.split("\n", 1)[0]
    delimiter = max(";,\t", key=header.count)
    return type("Sniffed", (csv.excel,), {"delimiter": delimiter})


def read_rows(data: bytes) -> Rows:
    text = decode(data)
    reader = csv.DictReader(text.splitlines(keepends=True), dialect=_dialect(text))
    columns = column_map(reader.fieldnames or [])
    rows = [(reader.line_num, row) for row in reader]
    return Rows(columns, rows)


def column_map(header: Iterable[str]) -> dict[str, str]:
    """Our field name -> the file's column name."""
    found: dict[str, str] = {}
    for column in header:
        key = (column or "").strip().lower()
        for field_name, spellings in COLUMNS.items():
            if key in spellings and field_name not in found:
                found[field_name] = column
    if "email" not in found:
        expected = ", ".join(COLUMNS["email"][:3])
        raise CsvImportError(f"no e-mail column (expected one of: {expected})")
    return found


@dataclass(frozen=True)
class Importing:
    """What every row of one import shares."""

    session: Session
    columns: dict[str, str]
    policy: CustomersConfig
    now: datetime
    force: bool
    report: ImportReport


def import_row(job: Importing, row: dict[str, str]) -> None:
    def get(name: str) -> str:
        return (row.get(job.columns.get(name, ""), "") or "").strip()

    name = get("name") or " ".join(filter(None, (get("first_name"), get("last_name"))))
    if not get("email"):
        if get("organisation") and get("domain"):
            _organisation(job, get("organisation"), get("domain"), get("agent"))
            return
        raise ValueError("no e-mail address (a row without one needs organisation and domain)")
    address = valid_address(get("email"))
    if address is None:
        raise ValueError(f"{get('email')!r} is not an e-mail address")
    org = (
        _organisation(job, get("organisation"), get("domain"), get("agent"))
        if get("organisation")
        else None
    )
    _contact(job, address, name, org, get("language"))


def _organisation(job: Importing, name: str, domains: str, agent_name: str) -> Organisation:
    """The company of a row, made if new, with the row's domains claimed and its agent."""
    session, report = job.session, job.report
    existing = session.exec(select(Organisation).where(Organisation.name == name)).first()
    if existing is not None and existing.kind != COMPANY:
        raise ValueError(f"{name!r} is a {existing.kind} organisation, not a company")
    org = existing or Organisation(name=name, kind=COMPANY, created_at=job.now)
    if existing is None:
        session.add(org)
        session.flush()
        report.organisations_created.add(name)
    report.organisations_found.add(name)
    for domain in filter(None, (d.strip() for d in domains.replace(";", ",").split(","))):
        new = session.get(OrganisationDomain, domain.lower()) is None
        try:
            claim(session, org.name, domain, job.policy, job.now, job.force)
        except ClaimError as exc:
            raise ValueError(str(exc)) from None
        report.domains_claimed += int(new)
    if agent_name:
        agent = find_agent(session, agent_name)
        if agent is None:
            raise ValueError(f"responsible agent {agent_name!r} is not an agent (add it first)")
        org.responsible_agent_id = agent.id
        session.add(org)
    return org


def _contact(
    job: Importing, address: str, name: str, org: Organisation | None, language: str
) -> None:
    """The row's contact: in the row's company, else where it is, else in one of its own."""
    session = job.session
    contact = session.exec(select(Contact).where(Contact.email == address)).first()
    if contact is None:
        home = org or personal_organisation(session, address, job.now)
        contact = Contact(email=address, organisation_id=home.id or 0, created_at=job.now)
        job.report.contacts_created += 1
    else:
        job.report.contacts_found += 1
    if org is not None:
        move_contact(session, contact, org)  # their own tickets come along, as by `move`
    contact.name = name or contact.name
    contact.language = language.lower()[:8] or contact.language
    session.add(contact)
    session.flush()


def import_rows(
    session: Session,
    rows: Rows,
    policy: CustomersConfig,
    now: datetime,
    force: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Import every row; a bad row is reported by its line number and changes nothing."""
    job = Importing(session, rows.columns, policy, now, force, ImportReport())
    for line, row in rows.rows:
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            progress()
            continue  # an empty line of separators, as spreadsheets leave at the end
        before = copy.deepcopy(job.report)
        try:
            with session.begin_nested():
                import_row(job, row)
        except ValueError as exc:
            job.report.restore(before)
            job.report.errors.append(f"line {line}: {exc}")
        progress()
    return job.report
