"""`customers forget`: erase a person's data on request (GDPR Art. 17), keep the books."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, text, update
from sqlmodel import Session, col, select

from mailgate.desk.customers import contact_by_email
from mailgate.desk.forgotten import FORGOTTEN_PREFIX as _PREFIX
from mailgate.flows.retention import (
    ERASURE,
    drop_outbox,
    drop_raw_mail,
    record_desk_event,
    removed_note,
    sent_directory,
    sent_files_of,
)
from mailgate.outbound.context import Context
from mailgate.store.database import direct
from mailgate.store.models import (
    FAILED,
    IGNORED,
    PERSONAL,
    QUARANTINED,
    QUEUED,
    RECEIVED,
    Article,
    Attachment,
    Blob,
    Contact,
    Event,
    Intake,
    IntakeRaw,
    Organisation,
    Outbox,
    OutboxRecipient,
    Participant,
    Ticket,
)

log = logging.getLogger("mailgate.forget")

FORGOTTEN_EVENT = "customer_forgotten"


class ForgetError(ValueError):
    """Why nobody can be forgotten under this address, worded for the operator."""


@dataclass
class Found:
    """Everything that holds the person's data: what `forget` erases, or would."""

    contact_id: int
    address: str
    placeholder: str
    tickets: list[int] = field(default_factory=list)  # numbers they asked or take part in
    articles: list[int] = field(default_factory=list)  # written by them
    addressed: list[int] = field(default_factory=list)  # others' articles to or copying them
    attachments: list[int] = field(default_factory=list)
    raw_mail: list[int] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    sent_files: list[Path] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "tickets": len(self.tickets),
            "articles": len(self.articles),
            "articles_addressed": len(self.addressed),
            "attachments": len(self.attachments),
            "raw_mail": len(self.raw_mail),
            "outbox": len(self.outbox),
            "events": len(self.events),
            "sent_files": len(self.sent_files),
        }


def find(ctx: Context, session: Session, address: str) -> Found:
    """What the person's erasure touches; ForgetError when nobody has the address."""
    address = address.strip().lower()
    contact = contact_by_email(session, address) if "@" in address else None
    if contact is None or contact.id is None:
        raise ForgetError(f"no customer with the address {address!r}")
    found = Found(contact.id, address, f"{_PREFIX}{contact.id}")
    asked = select(Ticket.number).where(Ticket.requester_id == contact.id)
    part = select(Participant.ticket_id).where(Participant.contact_id == contact.id)
    taking_part = select(Ticket.number).where(col(Ticket.id).in_(part))
    found.tickets = sorted(set(session.exec(asked)) | set(session.exec(taking_part)))
    found.articles = _ids(session, Article.id, func.lower(Article.from_addr) == address)
    mentioned = func.lower(Article.to_addrs + "," + Article.cc_addrs).contains(address)
    found.addressed = [
        i for i in _ids(session, Article.id, mentioned) if i not in set(found.articles)
    ]
    by_them = col(Attachment.article_id).in_(found.articles or [-1])
    found.attachments = _ids(session, Attachment.id, by_them)
    # Their own mail, and others' that copied them (its headers name them).
    theirs = found.articles + found.addressed
    of_articles = select(Article.intake_id).where(col(Article.id).in_(theirs or [-1]))
    from_them = (func.lower(Intake.from_addr) == address) | (
        func.lower(Intake.envelope_from) == address
    )
    found.raw_mail = sorted(
        set(_ids(session, Intake.id, from_them | col(Intake.id).in_(of_articles)))
        | set(_raw_naming(session, address))
    )
    to_them = select(OutboxRecipient.outbox_id).where(OutboxRecipient.address == address)
    # Mail about their tickets to others (agents' notifications quote them) once it went;
    # what is still queued for others goes as it is.
    ticket_ids = select(Ticket.id).where(col(Ticket.number).in_(found.tickets or [-1]))
    about = col(Outbox.ticket_id).in_(ticket_ids) & (Outbox.status != QUEUED)
    found.outbox = _ids(session, Outbox.id, col(Outbox.id).in_(to_them) | about)
    naming = (func.lower(Event.actor) == address) | func.lower(Event.detail).contains(address)
    found.events = _ids(session, Event.id, naming)
    directory = sent_directory(ctx)
    if directory is not None:
        found.sent_files = sent_files_of(directory, found.outbox)
    return found


def _raw_naming(session: Session, address: str) -> list[int]:
    """Stored mail whose bytes hold the address as written (a staff mail's `#cc`, a
    forward): one pass over all of them, which a rare request can afford. An address
    encoded (base64, RFC 2047) is not found: see README "Forgetting a customer"."""
    needle = address.encode()
    if session.get_bind().dialect.name == "sqlite":
        holds: object = func.instr(IntakeRaw.raw, needle) > 0
    else:
        holds = text("position(:needle in intake_raw.raw) > 0").bindparams(needle=needle)
    return _ids(session, IntakeRaw.intake_id, holds)


def _ids(session: Session, column: object, where: object) -> list[int]:
    return sorted(int(i) for i in session.exec(select(column).where(where)))  # type: ignore[call-overload]


def forget(ctx: Context, address: str) -> Found:
    """Erase the person in one transaction, then the files only they referred to."""
    now = ctx.clock()
    with ctx.store.session() as session:
        found = find(ctx, session, address)
        gone_blobs = _erase(session, found, now, ctx.config.data_dir)
        record_desk_event(
            session, "cli", FORGOTTEN_EVENT, f"contact {found.contact_id} forgotten", now
        )
    # After the commit: a row that still pointed at a deleted file would be a broken ticket.
    for path in (*gone_blobs, *found.sent_files):
        path.unlink(missing_ok=True)
    log.info(
        "event=customer_forgotten contact_id=%s %s",
        found.contact_id,
        " ".join(f"{k}={v}" for k, v in found.counts().items()),
    )
    return found


def _erase(session: Session, found: Found, now: datetime, data_dir: Path) -> list[Path]:
    """Every row's part; the blob files no attachment refers to any more."""
    note = removed_note(now, ERASURE)
    address, placeholder = found.address, found.placeholder
    contact = session.get(Contact, found.contact_id)
    assert contact is not None
    org = session.get(Organisation, contact.organisation_id)
    # A personal organisation is named after its one sender's address.
    if org is not None and org.kind == PERSONAL and org.name.lower().startswith(address):
        org.name = placeholder
        session.add(org)
    contact.email, contact.name, contact.language, contact.failing = placeholder, "", None, False
    session.add(contact)
    _erase_articles(session, found, note)
    gone = [data_dir / p for p in _erase_attachments(session, found.attachments)]
    _erase_raw_mail(session, found, note, now)
    _erase_outbox(session, found, note, now)
    for event in session.exec(select(Event).where(col(Event.id).in_(found.events or [-1]))):
        event.actor = placeholder if event.actor.lower() == address else event.actor
        event.detail = _replaced(event.detail, address, placeholder)
        session.add(event)
    return gone


def _replaced(text: str, address: str, placeholder: str) -> str:
    return re.sub(re.escape(address), placeholder, text, flags=re.IGNORECASE)


def _erase_articles(session: Session, found: Found, note: str) -> None:
    ids = found.articles + found.addressed
    for article in session.exec(select(Article).where(col(Article.id).in_(ids or [-1]))):
        if article.id in found.articles:
            article.from_addr, article.from_name = found.placeholder, ""
            article.subject, article.text, article.html, article.note = "", "", None, note
        article.to_addrs = _replaced(article.to_addrs, found.address, found.placeholder)
        article.cc_addrs = _replaced(article.cc_addrs, found.address, found.placeholder)
        session.add(article)


def _erase_attachments(session: Session, ids: list[int]) -> list[str]:
    """Delete the attachment rows; the blobs no other attachment shares go too (their
    paths, relative to the data directory, are returned)."""
    if not ids:
        return []
    digests = set(session.exec(select(Attachment.sha256).where(col(Attachment.id).in_(ids))))
    direct(session, delete(Attachment).where(col(Attachment.id).in_(ids)))
    still = set(session.exec(select(Attachment.sha256).where(col(Attachment.sha256).in_(digests))))
    unused = sorted(digests - still)
    if not unused:
        return []
    paths = list(session.exec(select(Blob.path).where(col(Blob.sha256).in_(unused))))
    direct(session, delete(Blob).where(col(Blob.sha256).in_(unused)))
    return paths


def _erase_raw_mail(session: Session, found: Found, note: str, now: datetime) -> None:
    drop_raw_mail(session, found.raw_mail, ERASURE, now)
    address = found.address
    for row in session.exec(select(Intake).where(col(Intake.id).in_(found.raw_mail or [-1]))):
        # The loop breaker and duplicate checks count rows by sender: a later mail from the
        # address starts afresh.
        row.from_addr = found.placeholder if row.from_addr.lower() == address else row.from_addr
        row.envelope_from = "" if row.envelope_from.lower() == address else row.envelope_from
        row.subject = ""
        if row.status in (RECEIVED, QUARANTINED):  # without its bytes it can never be done
            row.status, row.reason = IGNORED, note
        session.add(row)


def _erase_outbox(session: Session, found: Found, note: str, now: datetime) -> None:
    drop_outbox(session, found.outbox, ERASURE, now)
    for row in session.exec(select(Outbox).where(col(Outbox.id).in_(found.outbox or [-1]))):
        row.to_addrs = _replaced(row.to_addrs, found.address, found.placeholder)
        if row.status == QUEUED:  # nothing left to send
            row.status, row.last_error = FAILED, f"not sent: {note}"
        session.add(row)
    recipients = update(OutboxRecipient).where(OutboxRecipient.address == found.address)
    direct(session, recipients.values(address=found.placeholder))
