"""The outbox: queue composed mail in the caller's transaction, then claim, deliver, retry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, select

from mailgate.config import OutboundConfig
from mailgate.outbound.compose import Outgoing, compose, parse_address
from mailgate.outbound.context import Context
from mailgate.outbound.loops import AUTO_ANSWERS, noted_automatic
from mailgate.outbound.transports import (
    PermanentFailure,
    RelayUnavailable,
    TemporaryFailure,
    Transport,
    Unanswered,
)
from mailgate.reading.marks import bounce_address
from mailgate.store.database import Store, direct
from mailgate.store.later import later
from mailgate.store.models import FAILED, QUEUED, SENT, Outbox, OutboxRecipient

log = logging.getLogger("mailgate.outbox")

# A claimed row is invisible to other workers for [outbound] lease_seconds. The claimer
# renews the lease this often (in leases) while it sends, so a slow relay keeps the row with
# its sender, while the row of a process that died is free again within one lease.
RENEW_EVERY = 1 / 3
MAX_BACKOFF = timedelta(hours=6)
# Queued mail goes in as plain statements (at once, or with the transaction's other mail:
# later.py): nothing reads it back as an object in the transaction, and through the unit of
# work each row costs several times as much.
_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
# Rows come back in any order (SQLite gives no order that a multi-row insert keeps): each
# by its Message-ID, which is new for every mail.
_INSERT_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.message_id, _OUTBOX.c.id)
_SET_ENVELOPE_FROM = update(_OUTBOX).where(_OUTBOX.c.id == bindparam("row_id"))
_INSERT_RECIPIENTS = insert(OutboxRecipient.__table__)  # type: ignore[attr-defined]
# Only while the row is still this claim's: queued, with the attempts it counted. A process
# that took the row over has counted one more, and keeps it.
_RENEW_LEASE = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        _OUTBOX.c.attempts == bindparam("claimed_attempts"),
        _OUTBOX.c.status == QUEUED,
    )
    .values(next_attempt_at=bindparam("until"))
)


def enqueue(
    session: Session, ctx: Context, ticket_id: int | None, template: str, outgoing: Outgoing
) -> None:
    """Add a mail to the outbox inside the transaction of the change that caused it (with
    the transaction's other mail, when it defers writes). The ticket it belongs to is
    written already, so nothing pending need be flushed first."""
    now = ctx.clock()
    # Envelope recipients are bare addresses, whatever display names the headers carry.
    recipients = outgoing.envelope or (*outgoing.to, *outgoing.cc)
    to_addrs = ", ".join(parse_address(a).addr_spec for a in recipients)
    row = {
        "ticket_id": ticket_id,
        "template": template,
        "envelope_from": ctx.from_address,
        "to_addrs": to_addrs,
        "subject": outgoing.subject,
        "message_id": outgoing.message_id.strip("<>"),
        "raw": compose(outgoing, now),
        "next_attempt_at": now,
        "created_at": now,
    }
    automatic = template in AUTO_ANSWERS
    addresses = [a for a in dict.fromkeys(a.strip().lower() for a in to_addrs.split(",")) if a]
    queued = _Queued(row, addresses, automatic, ctx.secret_key)
    later(session, _write_queued, _QUEUE_TABLES, {"queued": queued})
    if automatic:
        noted_automatic(session, addresses)


@dataclass(frozen=True)
class _Queued:
    row: dict[str, Any]
    addresses: list[str]
    automatic: bool
    key: bytes


_QUEUE_TABLES = ("outbox", "outbox_recipient")


def _write_queued(session: Session, held: list[dict[str, Any]]) -> None:
    """Queued mail as three statements for any number of mails: the rows, then the envelope
    senders, which need the row ids, then the recipients the brakes count."""
    queued: list[_Queued] = [h["queued"] for h in held]
    if len({q.row["message_id"] for q in queued}) < len(queued):  # never so: one at a time
        for one in held:
            _write_queued(session, [one])
        return
    rows = [q.row for q in queued]
    written = direct(session, _INSERT_OUTBOX, rows if len(rows) > 1 else rows[0])
    ids = {message_id: int(row_id) for message_id, row_id in written}
    senders = [
        {
            "row_id": ids[q.row["message_id"]],
            "envelope_from": bounce_address(
                q.row["envelope_from"], ids[q.row["message_id"]], q.key
            ),
        }
        for q in queued
    ]
    direct(session, _SET_ENVELOPE_FROM, senders if len(senders) > 1 else senders[0])
    recipients = [
        {
            "outbox_id": ids[q.row["message_id"]],
            "address": address,
            "automatic": q.automatic,
            "created_at": q.row["created_at"],
        }
        for q in queued
        for address in q.addresses
    ]
    if recipients:
        direct(session, _INSERT_RECIPIENTS, recipients)


@dataclass(frozen=True)
class Claimed:
    id: int
    envelope_from: str
    recipients: list[str]
    raw: bytes
    attempts: int
    name_hint: str


def claim_due(store: Store, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Take up to `limit` due rows, leasing them so no other worker sends them meanwhile."""
    with store.session() as session:
        query = (
            select(Outbox)
            .where(Outbox.status == QUEUED, col(Outbox.next_attempt_at) <= now)
            .order_by(col(Outbox.id))
            .limit(limit)
        )
        if not store.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for row in session.exec(query):
            row.attempts += 1
            row.next_attempt_at = now + lease
            session.add(row)
            claimed.append(
                Claimed(
                    id=row.id or 0,
                    envelope_from=row.envelope_from,
                    recipients=[a.strip() for a in row.to_addrs.split(",") if a.strip()],
                    raw=row.raw,
                    attempts=row.attempts,
                    name_hint=f"{row.id}-{row.template}",
                )
            )
        return claimed


def renew_leases(store: Store, claimed: Sequence[Claimed], until: datetime) -> None:
    """Extend the lease of rows still being sent to `until`."""
    if not claimed:
        return
    params = [
        {"row_id": item.id, "claimed_attempts": item.attempts, "until": until} for item in claimed
    ]
    with store.session() as session:
        direct(session, _RENEW_LEASE, params)


def backoff(attempts: int, cfg: OutboundConfig) -> timedelta:
    delay = timedelta(seconds=cfg.retry_base_seconds * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


Result = tuple[Claimed, Exception | None]  # a delivery and its error, None when it was sent


def record_results(
    store: Store, results: Sequence[Result], cfg: OutboundConfig, now: datetime
) -> list[str]:
    """Mark each delivery's result, all in one transaction; their new statuses, in order."""
    with store.session() as session:
        ids = [item.id for item, _ in results]
        rows = {row.id: row for row in session.exec(select(Outbox).where(col(Outbox.id).in_(ids)))}
        statuses = []
        for item, error in results:
            row = rows[item.id]
            _mark(row, item.attempts, error, cfg, now)
            session.add(row)
            statuses.append(row.status)
        return statuses


def _mark(
    row: Outbox, attempts: int, error: Exception | None, cfg: OutboundConfig, now: datetime
) -> None:
    if error is None:
        row.status, row.sent_at, row.last_error = SENT, now, ""
        return
    # The relay's own words, so `outbox list` tells why without digging in the logs.
    row.last_error = str(error)
    if isinstance(error, PermanentFailure):
        row.status = FAILED
    elif attempts >= cfg.max_attempts:
        row.status = FAILED
        row.last_error += f" (gave up after {attempts} attempts)"
    elif now - row.created_at >= timedelta(hours=cfg.max_age_hours):
        row.status = FAILED
        row.last_error += f" (gave up: older than {cfg.max_age_hours:g} h)"
    else:
        row.next_attempt_at = now + backoff(attempts, cfg)


async def deliver_due(ctx: Context, transport: Transport, batch: int = 100) -> dict[str, int]:
    """Send everything that is due, a batch at a time so memory stays bounded, up to
    [outbound] connections messages at once; counts of the new statuses (sent, queued for a
    later retry, failed)."""
    counts = {SENT: 0, QUEUED: 0, FAILED: 0}
    lease = timedelta(seconds=ctx.config.outbound.lease_seconds)
    while claimed := await asyncio.to_thread(claim_due, ctx.store, ctx.clock(), batch, lease):
        sending = {item.id: item for item in claimed}  # claimed, result not yet recorded
        keeper = asyncio.create_task(_keep_leases(ctx, sending, lease))
        try:
            if not await _deliver_batch(ctx, transport, claimed, counts, sending):
                return counts
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
    return counts


async def _keep_leases(ctx: Context, sending: dict[int, Claimed], lease: timedelta) -> None:
    """Renew the leases of the rows in `sending` until cancelled."""
    while True:
        await asyncio.sleep(lease.total_seconds() * RENEW_EVERY)
        try:
            await asyncio.to_thread(
                renew_leases, ctx.store, list(sending.values()), ctx.clock() + lease
            )
        except Exception as exc:  # the database away: the next renewal may well succeed
            log.warning("event=lease_renewal_failed error=%r", str(exc))


async def _deliver_batch(
    ctx: Context,
    transport: Transport,
    claimed: list[Claimed],
    counts: dict[str, int],
    sending: dict[int, Claimed],
) -> bool:
    """Send the claimed rows over `connections` lanes and record each result; False when
    the relay is unavailable, which ends the round."""
    results: asyncio.Queue[Result | None] = asyncio.Queue()
    todo = iter(claimed)  # shared: a lane that is free takes the next row
    down: RelayUnavailable | None = None

    async def lane() -> None:
        nonlocal down
        for item in todo:
            if down is not None:
                # One failed connection speaks for the rest of the round: every row not yet
                # tried records it and keeps its turn (the same backoff as after its own try),
                # instead of knocking on a closed door once per row. The transport logs it.
                results.put_nowait((item, down))
                continue
            try:
                results.put_nowait((item, await _attempt(transport, item)))
            except RelayUnavailable as exc:
                down = down or exc
                results.put_nowait((item, exc))

    async def lanes() -> None:
        await asyncio.gather(*(lane() for _ in range(ctx.config.outbound.connections)))
        results.put_nowait(None)

    await _together(lanes(), _record_as_they_come(ctx, results, counts, sending))
    return down is None


async def _attempt(transport: Transport, item: Claimed) -> Exception | None:
    """Send one row; the error to record, if any. RelayUnavailable is left to the caller."""
    try:
        await transport.send(item.envelope_from, item.recipients, item.raw, item.name_hint)
    except RelayUnavailable:
        raise
    except Unanswered as exc:
        # Maybe delivered, maybe not: sent again (the same bytes, the same Message-ID),
        # since a duplicate is better than a loss.
        log.warning(
            "event=delivery_ambiguous outbox_id=%s attempt=%s error=%r",
            item.id,
            item.attempts,
            str(exc),
        )
        return exc
    except (TemporaryFailure, PermanentFailure) as exc:
        log.warning(
            "event=delivery_failed outbox_id=%s attempt=%s error=%r",
            item.id,
            item.attempts,
            str(exc),
        )
        return exc
    return None


async def _record_as_they_come(
    ctx: Context,
    results: asyncio.Queue[Result | None],
    counts: dict[str, int],
    sending: dict[int, Claimed],
) -> None:
    """Store results until the lanes are done (None). Whatever finished while one write ran
    goes into the next: few transactions, and each result stored moments after its send
    (a crash in between sends that mail again once its lease runs out)."""
    done = False
    while not done:
        taken = [await results.get()]
        while not results.empty():
            taken.append(results.get_nowait())
        done = taken[-1] is None  # the lanes put it last
        written = [r for r in taken if r is not None]
        if not written:
            continue
        # No lease renewed from now on: it would override the retry time recorded below.
        for item, _ in written:
            sending.pop(item.id, None)
        statuses = await asyncio.to_thread(
            record_results, ctx.store, written, ctx.config.outbound, ctx.clock()
        )
        for (item, _), status in zip(written, statuses, strict=True):
            counts[status] += 1
            if status == SENT:
                log.info("event=sent outbox_id=%s to=%s", item.id, ",".join(item.recipients))
            elif status == FAILED:
                log.warning(
                    "event=delivery_gave_up outbox_id=%s attempt=%s", item.id, item.attempts
                )


async def _together(*steps: Coroutine[Any, Any, None]) -> None:
    """Run the steps side by side; the first to fail cancels the others and its error is
    raised as it is (TaskGroup would wrap it, and the daemon logs the error's type)."""
    tasks = [asyncio.create_task(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def retry_failed(store: Store, now: datetime, ids: list[int] | None = None) -> int:
    """Put failed rows (all, or the given ids) back in the queue; returns how many."""
    with store.session() as session:
        # Without its bytes (retention, erasure) there is nothing to send again.
        query = select(Outbox).where(Outbox.status == FAILED, col(Outbox.removed_at).is_(None))
        if ids:
            query = query.where(col(Outbox.id).in_(ids))
        count = 0
        for row in session.exec(query):
            row.status, row.attempts, row.next_attempt_at = QUEUED, 0, now
            session.add(row)
            count += 1
        return count
