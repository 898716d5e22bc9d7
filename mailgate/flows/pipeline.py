"""process(): parse, screen, route and apply one stored message; failures become quarantine."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailgate.desk.customers import (
    look_up_contacts,
)
from mailgate.desk.decisions import NewTicket
from mailgate.desk.duplicates import look_up_message_ids, note_outcome
from mailgate.desk.tickets import Opening, open_ticket
from mailgate.flows import oversize
from mailgate.flows.apply import Outcome, apply, served_envelope
from mailgate.flows.replies import (
    written_text,
)
from mailgate.outbound import loops, notify
from mailgate.outbound.context import Context
from mailgate.reading import tags
from mailgate.reading.language import text_scores
from mailgate.reading.parse import ParsedMail, parse
from mailgate.store.database import StoreUnavailable, direct
from mailgate.store.later import defer_writes, later
from mailgate.store.models import DONE, IGNORED, QUARANTINED, RECEIVED, Intake
from mailgate.store.spool import stored_raw, stored_raws

log = logging.getLogger("mailgate.pipeline")

_OUTCOME_COLUMNS = (
    "status",
    "reason",
    "attempts",
    "processed_at",
    "message_id",
    "from_addr",
    "subject",
    "automatic",
    "ticket_id",
    "article_id",
    "in_hand_by",
)
_INTAKES = Intake.__table__  # type: ignore[attr-defined]
_UPDATE_INTAKE = update(_INTAKES).where(_INTAKES.c.id == bindparam("intake_id"))
PARSE_AHEAD_BYTES = 1 << 20  # a batch parses messages up to this size before storing
CONFLICT_ATTEMPTS = 3  # tries of a message whose rows collide with a concurrent transaction


def _record(intake: Intake, outcome: Outcome, mail: ParsedMail | None, ctx: Context) -> None:
    intake.status, intake.reason = outcome.status, outcome.reason
    intake.attempts += 1
    intake.processed_at = ctx.clock()
    intake.in_hand_by = ""  # out of hand: an outcome is no death
    if mail is not None:
        intake.message_id = mail.message_id or ""
        intake.from_addr = mail.from_addr
        intake.subject = mail.subject[:500]
        intake.automatic = loops.verdict(mail)


def _write_outcome(session: Session, intake: Intake) -> None:
    """The claimed message's outcome, written with the batch's others (later.py). What the
    next message of the batch asks of it, it asks of memory: the duplicate check
    (note_outcome), the loop breaker (noted_mail). A plain update: the claimed rows are not
    in the session, so its unit of work does not write them again."""
    row = {name: getattr(intake, name) for name in _OUTCOME_COLUMNS}
    later(session, _write_outcomes, ("intake",), {"intake_id": intake.id, **row})
    note_outcome(session, intake)
    loops.noted_mail(session, intake.from_addr, intake.automatic)


def _write_outcomes(session: Session, rows: list[dict[str, object]]) -> None:
    direct(session, _UPDATE_INTAKE, rows if len(rows) > 1 else rows[0])


def process(ctx: Context, intake_id: int) -> Outcome:
    """Bring one stored message to its outcome, in one transaction. Never raises for a bad
    message (it is quarantined with the reason); StoreUnavailable means try again later."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            with _storage_trouble_deferred(), ctx.store.session() as session:
                defer_writes(session)
                claimed = _claim(session, ctx, [intake_id])
                withheld = oversize.withheld_among(session, claimed.values())
                outcome = _outcome(session, ctx, intake_id, claimed.get(intake_id), withheld)
            break
        except StoreUnavailable:
            raise
        except IntegrityError as exc:
            # Another transaction created the same contact or organisation meanwhile (a
            # second worker or instance, the same new sender): once it is committed, a new
            # try finds it. Only a conflict that stays is the message's fault.
            if attempt == CONFLICT_ATTEMPTS:
                return _quarantined_for(ctx, intake_id, exc)
            log.info("event=conflict_retry intake_id=%s attempt=%d", intake_id, attempt)
        except Exception as exc:  # one bad message must never stop the others
            return _quarantined_for(ctx, intake_id, exc)
    _log_processed(outcome)
    return outcome


def _quarantined_for(ctx: Context, intake_id: int, exc: Exception) -> Outcome:
    log.error("event=quarantine intake_id=%s error=%r", intake_id, f"{type(exc).__name__}: {exc}")
    log.debug("event=quarantine_traceback intake_id=%s", intake_id, exc_info=exc)
    return quarantine(ctx, intake_id, f"{type(exc).__name__}: {exc}")


def process_batch(
    ctx: Context, intake_ids: Sequence[int], parsed: Mapping[int, ParsedMail] | None = None
) -> list[Outcome]:
    """process() for several stored messages, in one transaction: one commit (and on
    PostgreSQL one claim) for all, and what they share is read once: the agents, the
    senders' contacts and organisations, earlier copies by Message-ID, the automatic answers
    each sender got in the last hour, which senders sent automatic mail lately, the ticket
    a reply threads to. Their outcomes, events and queued mail are written at the end, one
    statement for each kind (later.py). Each is parsed before the first write, so the write
    lock of SQLite is held for storing only; `parsed` has those parsed already (from their
    stored bytes) by id. A message that fails rolls the batch back, and the batch is done
    again one message at a time, so that only the bad one is quarantined."""
    if len(intake_ids) <= 1:
        return [process(ctx, intake_id) for intake_id in intake_ids]
    given = parsed or {}
    try:
        with _storage_trouble_deferred(), ctx.store.session() as session:
            defer_writes(session)
            claimed = _claim(session, ctx, intake_ids)
            mails = _parsed(session, claimed, given)
            known = list(mails.values())
            look_up_contacts(session, [mail.from_addr for mail in known])
            look_up_message_ids(session, [mail.message_id or "" for mail in known])
            senders = [mail.from_addr for mail in known]
            loops.count_ahead(session, senders, ctx.clock())
            loops.breakers_ahead(session, ctx, senders, ctx.clock())
            withheld = oversize.withheld_among(session, claimed.values())
            outcomes = [
                _outcome(session, ctx, i, claimed.get(i), withheld, mails.get(i))
                for i in intake_ids
            ]
    except StoreUnavailable:
        raise
    except Exception as exc:  # find the bad one: each alone
        log.info("event=batch_split messages=%d error=%r", len(intake_ids), type(exc).__name__)
        return [process(ctx, intake_id) for intake_id in intake_ids]
    for outcome in outcomes:
        _log_processed(outcome)
    return outcomes


@contextmanager
def _storage_trouble_deferred() -> Iterator[None]:
    """The data directory cannot be written (full disk, wrong permissions): no fault of the
    message's, so it stays stored and waits, instead of being quarantined."""
    try:
        yield
    except OSError as exc:
        raise StoreUnavailable(f"data directory: {exc}") from exc


def prepared(raw: bytes) -> ParsedMail:
    """The message parsed, with what processing computes from the mail alone computed
    already (once_per_mail): a second process does this ahead of the one that writes."""
    mail = parse(raw)
    written_text(mail)
    text_scores(mail)
    return mail


def _parsed(
    session: Session, claimed: Mapping[int, Intake], given: Mapping[int, ParsedMail]
) -> dict[int, ParsedMail]:
    """The claimed messages parsed, those given parsed already; without a large one, parsed
    at its turn, so that a batch holds one large mail's parts at a time and not all of them.
    A parse that fails splits the batch like any other failure."""
    wanted = [
        intake_id
        for intake_id, intake in claimed.items()
        if intake_id not in given and intake.status == RECEIVED and intake.size <= PARSE_AHEAD_BYTES
    ]
    parsed = {i: parse(raw) for i, raw in stored_raws(session, wanted).items()}
    return {i: given[i] for i in claimed if i in given} | parsed


def _outcome(
    session: Session,
    ctx: Context,
    intake_id: int,
    intake: Intake | None,
    withheld: Collection[int],
    mail: ParsedMail | None = None,
) -> Outcome:
    """`withheld`: the ids of messages of which only the header was stored (oversize.py)."""
    if intake is None:
        if session.get(Intake, intake_id) is not None:
            return Outcome(intake_id, RECEIVED, "being processed by another instance")
        return Outcome(intake_id, QUARANTINED, "no such stored message")
    if intake.status != RECEIVED:
        return Outcome(intake_id, intake.status, "already processed")
    if mail is None:
        mail = parse(stored_raw(session, intake.id or 0))
    if intake_id in withheld:
        # Its header alone would make a ticket without the request: the sender is told.
        decided = Outcome(intake_id, IGNORED, oversize.answer(session, ctx, intake, mail))
    else:
        decided = apply(session, ctx, intake, mail)
    outcome = dataclasses.replace(decided, source=intake.source)
    _record(intake, outcome, mail, ctx)
    _write_outcome(session, intake)
    return outcome


def _log_processed(outcome: Outcome) -> None:
    if outcome.source:  # reached now, not found done or taken by another instance
        log.info("event=processed intake_id=%s outcome=%s", outcome.intake_id, outcome.describe())


def _claim(session: Session, ctx: Context, intake_ids: Sequence[int]) -> dict[int, Intake]:
    """The stored messages, locked for this transaction. On PostgreSQL several instances may
    pick up the same message (left over after a crash, say): the row lock lets one process
    it, and the others skip it rather than wait and find it done. SQLite has one writer."""
    query = select(Intake).where(col(Intake.id).in_(intake_ids)).order_by(col(Intake.id))
    if not ctx.store.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    claimed = {intake.id or 0: intake for intake in session.exec(query)}
    for intake in claimed.values():
        session.expunge(intake)  # read-only from here on; _write_outcome writes the outcome
    return claimed


def quarantine(ctx: Context, intake_id: int, reason: str) -> Outcome:
    outcome = Outcome(intake_id, QUARANTINED, reason[:1000])
    with ctx.store.session() as session:
        intake = session.get(Intake, intake_id)
        if intake is not None:
            outcome = dataclasses.replace(outcome, source=intake.source)
            _record(intake, outcome, None, ctx)
            session.add(intake)
    return outcome


def pending_ids(ctx: Context, limit: int = 1000) -> list[int]:
    """Stored messages still waiting for an outcome (after a crash, or a busy database)."""
    with ctx.store.session() as session:
        query = select(Intake.id).where(Intake.status == RECEIVED).order_by(col(Intake.id))
        return [i for i in session.exec(query.limit(limit)) if i is not None]


def retry(ctx: Context, ids: list[int] | None) -> list[Outcome]:
    """Process quarantined messages again from their stored bytes (all when ids is None)."""
    with ctx.store.session() as session:
        query = select(Intake).where(Intake.status == QUARANTINED)
        if ids:
            query = query.where(col(Intake.id).in_(ids))
        chosen = list(session.exec(query))
        for intake in chosen:
            intake.status, intake.reason = RECEIVED, ""
            intake.deaths = 0  # the cause is taken to be fixed: it gets its chances again
            session.add(intake)
    return [process(ctx, intake.id or 0) for intake in chosen]


class OperatorError(ValueError):
    """An operator's request that cannot be carried out (no such message, wrong state)."""


def _quarantined(session: Session, intake_id: int) -> Intake:
    intake = session.get(Intake, intake_id)
    if intake is None:
        raise OperatorError(f"no stored message {intake_id}")
    if intake.status != QUARANTINED:
        raise OperatorError(f"message {intake_id} is {intake.status}, not quarantined")
    return intake


def release(
    ctx: Context, intake_id: int, from_addr: str | None = None, as_customer: bool = False
) -> Outcome:
    """Force a new ticket from a quarantined message, for its sender or `from_addr`. Only with
    `as_customer` is it answered like any new request: it was quarantined for a reason, and an
    acknowledgement to a hostile or looping sender is what the quarantine prevented."""
    with ctx.store.session() as session:
        intake = _quarantined(session, intake_id)
        mail = parse(stored_raw(session, intake.id or 0))
        address = (from_addr or mail.from_addr).strip().lower()
        if "@" not in address:
            raise OperatorError(f"message {intake_id} has no sender address: give --from ADDRESS")
        envelope = served_envelope(ctx, mail, [a for a in intake.envelope_to.splitlines() if a])
        opening = Opening(address, mail.from_name if address == mail.from_addr else "")
        decision = NewTicket(automatic=None if as_customer else "released by operator")
        applied = open_ticket(
            session, decision, mail, intake, envelope, ctx.config, ctx.clock(), opening
        )
        if as_customer and applied.contact is not None:
            notify.acknowledge(session, ctx, applied.ticket, applied.contact, mail)
            notify.notify_staff(session, ctx, applied.ticket, applied.article, "new")
        intake.ticket_id, intake.article_id = applied.ticket.id, applied.article.id
        cid = tags.cid(ctx.config.tickets.prefix, applied.ticket.number)
        outcome = Outcome(intake_id, DONE, "released by operator", cid, True, intake.source)
        _record(intake, outcome, mail, ctx)
        session.add(intake)
    log.info("event=released intake_id=%s ticket=%s", intake_id, cid)
    return outcome


def drop(ctx: Context, intake_id: int, reason: str) -> Outcome:
    """Mark a quarantined message ignored for good; its raw bytes stay stored."""
    if not reason.strip():
        raise OperatorError("give a reason for dropping the message")
    with ctx.store.session() as session:
        intake = _quarantined(session, intake_id)
        outcome = Outcome(intake_id, IGNORED, f"dropped by operator: {reason.strip()}"[:1000])
        intake.status, intake.reason = outcome.status, outcome.reason
        intake.processed_at = ctx.clock()
        session.add(intake)
    log.info("event=dropped intake_id=%s", intake_id)
    return outcome
