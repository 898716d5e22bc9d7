"""Retention: the bytes of mail whose outcome is committed go once older than [retention] days."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, update
from sqlmodel import Session, col, select

from mailgate.moments import aware
from mailgate.outbound.context import Context
from mailgate.outbound.file_transport import named_in
from mailgate.store.database import direct
from mailgate.store.models import DONE, IGNORED, SENT, Event, Intake, IntakeRaw, Outbox

log = logging.getLogger("mailgate.retention")

# Why a row's bytes are gone (Intake.removed_by, Outbox.removed_by).
RETENTION, ERASURE = "retention", "erasure"
RETENTION_EVENT = "retention"
# Rows changed per statement: a first run on years of mail stays a few bounded statements.
_CHUNK = 500
# The file transport names each file after the moment it wrote it: "20261102T090000.000000Z-".
_EVENTS = Event.__table__  # type: ignore[attr-defined]


@dataclass
class Removal:
    """What a run removed (or, dry, would remove): ids, file names and their bytes."""

    raw_mail: list[int] = field(default_factory=list)
    raw_bytes: int = 0
    outbox: list[int] = field(default_factory=list)
    outbox_bytes: int = 0
    sent_files: list[str] = field(default_factory=list)
    sent_bytes: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.raw_mail or self.outbox or self.sent_files)

    def describe(self) -> str:
        """One line for the event and the log: counts, no addresses."""
        return (
            f"raw mail {len(self.raw_mail)} ({self.raw_bytes} bytes), "
            f"outbox {len(self.outbox)} ({self.outbox_bytes} bytes), "
            f"sent mail files {len(self.sent_files)} ({self.sent_bytes} bytes)"
        )


def removed_note(at: datetime, by: str, zone: str = "UTC") -> str:
    """What every place that would show the bytes says instead."""
    day = aware(at).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")
    return f"erased on request on {day}" if by == ERASURE else f"removed by retention on {day}"


def record_desk_event(
    session: Session, actor: str, action: str, detail: str, now: datetime
) -> None:
    """An event of the whole desk, on no ticket (a retention run, a customer forgotten)."""
    row = {"ticket_id": None, "actor": actor, "action": action, "detail": detail}
    direct(session, insert(_EVENTS), {**row, "created_at": now})


def desk_events(session: Session) -> list[Event]:
    query = select(Event).where(col(Event.ticket_id).is_(None)).order_by(col(Event.id))
    return list(session.exec(query))


def run(ctx: Context, dry_run: bool = False) -> Removal:
    """Remove (or, dry, only find) what [retention] says is old enough; the rows stay."""
    cfg, now = ctx.config.retention, ctx.clock()
    removal = Removal()
    directory, old = sent_directory(ctx), []
    with ctx.store.session() as session:
        if cfg.raw_mail_days:
            _old_raw_mail(session, now - timedelta(days=cfg.raw_mail_days), removal)
        if cfg.outbox_days:
            _old_outbox(session, now - timedelta(days=cfg.outbox_days), removal)
        if cfg.sent_mail_days and directory is not None:
            old = _old_files(session, directory, now - timedelta(days=cfg.sent_mail_days))
        if not dry_run:
            drop_raw_mail(session, removal.raw_mail, RETENTION, now)
            drop_outbox(session, removal.outbox, RETENTION, now)
    if old:
        removal.sent_files = [p.name for p in old]
        removal.sent_bytes = sum(p.stat().st_size for p in old)
        if not dry_run:
            # After the rows' commit: a file is only a copy of what was sent.
            for path in old:
                path.unlink(missing_ok=True)
    if not dry_run:
        log.info(
            "event=retention_run raw_mail=%d raw_bytes=%d outbox=%d outbox_bytes=%d "
            "sent_files=%d sent_bytes=%d",
            len(removal.raw_mail),
            removal.raw_bytes,
            len(removal.outbox),
            removal.outbox_bytes,
            len(removal.sent_files),
            removal.sent_bytes,
        )
        if removal.anything:
            with ctx.store.session() as session:
                record_desk_event(session, "system", RETENTION_EVENT, removal.describe(), now)
    return removal


def _old_raw_mail(session: Session, cutoff: datetime, removal: Removal) -> None:
    """Processed messages only: a quarantined or waiting one still needs its bytes."""
    query = (
        select(Intake.id, Intake.size)
        .where(
            col(Intake.status).in_((DONE, IGNORED)),
            col(Intake.received_at) < cutoff,
            col(Intake.removed_at).is_(None),
        )
        .order_by(col(Intake.id))
    )
    for intake_id, size in session.exec(query):
        removal.raw_mail.append(intake_id)
        removal.raw_bytes += size


def _old_outbox(session: Session, cutoff: datetime, removal: Removal) -> None:
    """Sent mail only: queued mail is still to go, failed mail may be retried."""
    query = (
        select(Outbox.id, func.length(Outbox.raw))
        .where(
            Outbox.status == SENT,
            # Days from when it went: a mail retried late is kept as long as any other.
            func.coalesce(Outbox.sent_at, Outbox.created_at) < cutoff,
            col(Outbox.removed_at).is_(None),
        )
        .order_by(col(Outbox.id))
    )
    for outbox_id, size in session.exec(query):
        removal.outbox.append(outbox_id)
        removal.outbox_bytes += int(size or 0)


def drop_raw_mail(session: Session, ids: Sequence[int], by: str, now: datetime) -> None:
    """Delete stored messages' bytes; their rows say when and why."""
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        direct(session, delete(IntakeRaw).where(col(IntakeRaw.intake_id).in_(chunk)))
        marked = update(Intake).where(col(Intake.id).in_(chunk))
        direct(session, marked.values(removed_at=now, removed_by=by))


def drop_outbox(session: Session, ids: Sequence[int], by: str, now: datetime) -> None:
    """Empty outgoing mails' bytes; their rows say when and why."""
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        emptied = update(Outbox).where(col(Outbox.id).in_(chunk))
        direct(session, emptied.values(raw=b"", removed_at=now, removed_by=by))


def sent_directory(ctx: Context) -> Path | None:
    """Where the file transport writes sent mail; None when mail goes to a relay."""
    out = ctx.config.outbound
    return Path(out.directory) if out.transport == "file" and out.directory else None


def _old_files(session: Session, directory: Path, cutoff: datetime) -> list[Path]:
    if not directory.is_dir():
        return []
    files = {p: named_in(p.name) for p in directory.glob("*.eml")}
    ids = {named[1] for named in files.values() if named}
    query = select(Outbox.id, func.coalesce(Outbox.sent_at, Outbox.created_at))
    sent = dict(session.exec(query.where(col(Outbox.id).in_(ids))).all()) if ids else {}
    return sorted(p for p, named in files.items() if _written_at(p, named, sent) < cutoff)


def _written_at(
    path: Path, named: tuple[datetime, int] | None, sent: dict[int, datetime]
) -> datetime:
    """When the mail in the file was sent: its outbox row's time (the daemon's clock), else
    the moment in its name, else the file's modification time (a file put there by hand)."""
    if named and named[1] in sent:
        return aware(sent[named[1]])
    if named:
        return named[0]
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def sent_files_of(directory: Path, outbox_ids: Sequence[int]) -> list[Path]:
    """The files the file transport wrote for these outbox rows (named "<stamp>-<id>-…")."""
    wanted = set(outbox_ids)
    if not wanted or not directory.is_dir():
        return []
    return sorted(
        p for p in directory.glob("*.eml") if (named := named_in(p.name)) and named[1] in wanted
    )


def removed_intakes(session: Session, ids: Sequence[int]) -> dict[int, tuple[datetime, str]]:
    """Of these stored messages, those whose bytes are gone: when, and why."""
    if not ids:
        return {}
    query = select(Intake.id, Intake.removed_at, Intake.removed_by).where(
        col(Intake.id).in_(ids), col(Intake.removed_at).is_not(None)
    )
    return {i: (at, by) for i, at, by in session.exec(query)}


def removed_outbox(session: Session, ids: Sequence[int]) -> dict[int, tuple[datetime, str]]:
    """Of these outbox rows, those whose bytes are gone: when, and why."""
    if not ids:
        return {}
    query = select(Outbox.id, Outbox.removed_at, Outbox.removed_by).where(
        col(Outbox.id).in_(ids), col(Outbox.removed_at).is_not(None)
    )
    return {i: (at, by) for i, at, by in session.exec(query)}
