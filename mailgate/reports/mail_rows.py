"""Stored mail as the command line shows it: a ticket's articles, the intake, the outbox."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlmodel import Session, col, select

from mailgate.flows.retention import removed_note
from mailgate.reports.listing import iso
from mailgate.store.models import Article, Attachment, Intake, Outbox
from mailgate.store.spool import stored_raw


def _split(addresses: str) -> list[str]:
    return [a.strip() for a in addresses.split(",") if a.strip()]


def article_dict(session: Session, a: Article) -> dict[str, Any]:
    files = session.exec(
        select(Attachment).where(Attachment.article_id == a.id).order_by(col(Attachment.id))
    )
    return {
        "id": a.id,
        "direction": a.direction,
        "from": a.from_addr,
        "from_name": a.from_name,
        "to": _split(a.to_addrs),
        "cc": _split(a.cc_addrs),
        "subject": a.subject,
        "date": iso(a.date),
        "message_id": a.message_id,
        "note": a.note,
        "text": a.text,
        "html": a.html,
        "attachments": [
            {
                "filename": f.filename,
                "content_type": f.content_type,
                "size": f.size,
                "sha256": f.sha256,
                "content_id": f.content_id,
                "inline": f.inline,
            }
            for f in files
        ],
        "created_at": iso(a.created_at),
    }


def _peek(raw: bytes) -> tuple[str, str]:
    """From and Subject of a message that may never have parsed."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw[:65536])
        return str(headers.get("from", "") or ""), str(headers.get("subject", "") or "")
    except Exception:  # a header bad enough to break even this is shown as empty
        return "", ""


def intake_dict(session: Session, row: Intake, with_headers: bool = False) -> dict[str, Any]:
    """A stored message as listed; its bytes are read only for what processing did not note
    (a message quarantined before it parsed) and for its headers."""
    sender, subject = (row.from_addr, row.subject)
    unnoted = not sender and not subject and row.removed_at is None
    kept = row.removed_at is None
    raw = stored_raw(session, row.id or 0) if kept and (unnoted or with_headers) else b""
    if unnoted:
        sender, subject = _peek(raw)
    data: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "reason": row.reason,
        "received_at": iso(row.received_at),
        "size": row.size,
        "from": sender,
        "subject": subject,
        "source": row.source,
        "attempts": row.attempts,
        "message_id": row.message_id,
    }
    if row.removed_at is not None:
        data["removed"] = removed_note(row.removed_at, row.removed_by)
    if with_headers:
        data["headers"] = data.get("removed") or (
            raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
        )
    return data


def intake_rows(session: Session, status: str) -> list[dict[str, Any]]:
    query = select(Intake).where(Intake.status == status).order_by(col(Intake.id))
    return [intake_dict(session, row) for row in session.exec(query)]


def outbox_rows(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    query = select(Outbox).order_by(col(Outbox.id))
    if status:
        query = query.where(Outbox.status == status)
    return [
        {
            "id": o.id,
            "to": _split(o.to_addrs),
            "subject": o.subject,
            "status": o.status,
            "attempts": o.attempts,
            "template": o.template,
            "last_error": o.last_error,
            "created_at": iso(o.created_at),
            "sent_at": iso(o.sent_at),
            "removed": removed_note(o.removed_at, o.removed_by) if o.removed_at else None,
        }
        for o in session.exec(query)
    ]
