"""Loop policy: may an automatic answer go to this address now? (rate limits and breakers)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from mailgate.desk.customers import agent_by_email
from mailgate.moments import aware
from mailgate.outbound.context import Context
from mailgate.reading.parse import ParsedMail
from mailgate.reading.screen import AUTOMATIC_MAIL_RULES
from mailgate.store.database import direct
from mailgate.store.models import RECEIVED, Intake, IntakeRaw, Outbox, OutboxRecipient

log = logging.getLogger("mailgate.loops")

# The mails mailgate sends on its own in answer to a mail that came in: the only ones a robot
# can keep calling for, so the only ones the brakes count and hold back. Mail caused by a
# person (a staff answer or command, a customer's reply to their ticket) and reminders on a
# schedule cannot feed a loop: automatic mail never causes them.
AUTO_ANSWERS = frozenset({"acknowledgement", "ticket_list", "rejected_sender", "message_too_large"})
RATE_WINDOW = timedelta(hours=1)
# How far back the breaker reads one address's stored mail at most (rows, newest first).
BREAKER_LOOKBACK = 200
HEADER_BYTES = 65536
# An empty line, which ends the header block. Lines end as the stdlib's parser splits them:
# at CRLF, LF, or a CR that no LF follows.
_EMPTY_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)")

# Built once, as they are asked before every automatic mail: building a statement costs
# about as much again as running it.
_AUTOMATIC_SENT = select(func.count()).where(
    OutboxRecipient.address == bindparam("address"),
    col(OutboxRecipient.created_at) > bindparam("since"),
    col(OutboxRecipient.automatic).is_(True),
)
_AUTOMATIC_SENT_TO_EACH = (
    select(OutboxRecipient.address, func.count())
    .where(
        col(OutboxRecipient.address).in_(bindparam("addresses", expanding=True)),
        col(OutboxRecipient.created_at) > bindparam("since"),
        col(OutboxRecipient.automatic).is_(True),
    )
    .group_by(OutboxRecipient.address)
)
_DESK_ANSWERS = select(func.count()).where(
    col(Outbox.created_at) > bindparam("since"), col(Outbox.template).in_(sorted(AUTO_ANSWERS))
)
_RECENT_MAIL = (
    select(Intake.id, Intake.received_at, Intake.automatic)
    # The pipeline stores senders lower-cased, so a plain comparison can use the index.
    .where(Intake.from_addr == bindparam("address"), Intake.status != RECEIVED)
    .order_by(col(Intake.received_at).desc())
    .limit(BREAKER_LOOKBACK)
)

# Which of a batch's senders sent automatic mail (or mail of no verdict yet) within a window:
# the breaker walks only their mail.
_AUTOMATIC_LATELY = (
    select(Intake.from_addr)
    .where(
        col(Intake.from_addr).in_(bindparam("addresses", expanding=True)),
        Intake.status != RECEIVED,
        col(Intake.received_at) > bindparam("since"),
        col(Intake.automatic).is_not(False),
    )
    .distinct()
)

DESK = "(all addresses)"  # the key the desk-wide breaker logs and counts under
_COUNTS = "mailgate.automatic_answers"  # session.info: the counts read in the transaction
_SUSPECTS = "mailgate.automatic_senders"  # session.info: address -> sent automatic mail lately
_logged_lock = threading.Lock()


def is_internal(session: Session, ctx: Context, address: str) -> bool:
    """Our own people and addresses: a loop through them is already cut by the screening
    (their automatic mail causes nothing), and limiting them would hide tickets from staff."""
    team = ctx.config.staff.team_address
    if address in ctx.own_addresses or (team and address == parseaddr(team)[1].lower()):
        return True
    return agent_by_email(session, address) is not None


def automatic_sent(session: Session, address: str, since: datetime) -> int:
    """Automatic answers queued to the address since then (To or Cc)."""
    params = {"address": address.lower(), "since": since}
    return int(direct(session, _AUTOMATIC_SENT, params).scalar_one())


def _counted(session: Session, key: str, count: Callable[[], int]) -> int:
    """A count of automatic answers in the last hour, read once per transaction and kept up
    to date by noted_automatic(): a batch of mails asks before every acknowledgement, and a
    count over the last hour's mail grows with it (a burst's last answers counted all the
    ones before). Mail that leaves the window while the transaction runs still counts: the
    brakes hold a moment longer, never shorter."""
    counts: dict[str, int] = session.info.setdefault(_COUNTS, {})
    if key not in counts:
        counts[key] = count()
    return counts[key]


def count_ahead(session: Session, addresses: Iterable[str], now: datetime) -> None:
    """The per-address counts for these addresses read by one statement: a batch's senders,
    whom most of its automatic answers go to."""
    counts: dict[str, int] = session.info.setdefault(_COUNTS, {})
    wanted = [a for a in dict.fromkeys(a.lower() for a in addresses if a) if a not in counts]
    if not wanted:
        return
    params = {"addresses": wanted, "since": now - RATE_WINDOW}
    found = dict(direct(session, _AUTOMATIC_SENT_TO_EACH, params).all())
    counts.update({address: int(found.get(address, 0)) for address in wanted})


def noted_automatic(session: Session, addresses: Iterable[str]) -> None:
    """An automatic answer to these (lower-case) addresses was queued in the transaction."""
    counts: dict[str, int] | None = session.info.get(_COUNTS)
    if counts is None:
        return
    for key in (DESK, *addresses):
        if key in counts:
            counts[key] += 1


def rate_limited(session: Session, ctx: Context, address: str, now: datetime) -> str | None:
    limit = ctx.config.loops.max_auto_mails_per_hour
    since = now - RATE_WINDOW
    if _counted(session, address, lambda: automatic_sent(session, address, since)) < limit:
        return None
    return f"rate limit: {limit} automatic mails to {address} in the last hour"


def desk_limited(session: Session, ctx: Context, now: datetime) -> str | None:
    """The desk-wide breaker: past `max_auto_mails_per_hour_total` automatic answers to anyone
    in the last hour, something is answering robots across many addresses at once."""
    limit = ctx.config.loops.max_auto_mails_per_hour_total
    since = {"since": now - RATE_WINDOW}
    sent = _counted(session, DESK, lambda: int(direct(session, _DESK_ANSWERS, since).scalar_one()))
    if sent < limit:
        return None
    return f"desk limit: {limit} automatic mails to all addresses in the last hour"


def is_automatic(raw: bytes, address: str) -> bool:
    """The pipeline's verdict on a stored mail, from its headers alone (cheap, and the
    automatic-mail rules read nothing else)."""
    message = BytesHeaderParser().parsebytes(raw)
    headers = {name.lower(): str(value) for name, value in reversed(message.items())}
    mail = ParsedMail(message_id=None, subject="", from_addr=address, from_name="", headers=headers)
    return any(rule(mail) for rule in AUTOMATIC_MAIL_RULES)


def header_block(raw: bytes) -> bytes:
    """The part of a stored message the breaker reads: its first HEADER_BYTES, cut after
    the empty line that ends the headers. The parser reads no header past that line, so
    is_automatic says the same of both, without working through the body."""
    head = bytes(raw[:HEADER_BYTES])
    end = _EMPTY_LINE.search(head)
    return head[: end.end()] if end else head


def verdict(mail: ParsedMail) -> bool | None:
    """Whether a processed message is automatic mail, noted with its outcome: the breaker
    then reads a column instead of parsing each of the sender's recent mails again. The
    rules of is_automatic, on the headers as parsed already. None without a sender: the
    breaker asks only about addresses we write to."""
    if not mail.from_addr:
        return None
    return any(rule(mail) for rule in AUTOMATIC_MAIL_RULES)


def _stored_verdict(session: Session, intake_id: int, address: str) -> bool:
    """is_automatic for a message processed before its verdict was noted with it. The head
    is enough for the headers, and keeps a large mail from being read whole."""
    head = func.substr(IntakeRaw.raw, 1, HEADER_BYTES)
    query = select(head).where(IntakeRaw.intake_id == intake_id)
    stored = session.exec(query).first()
    if stored is None:  # its bytes were removed (retention.py): nothing says it was automatic
        return False
    return is_automatic(header_block(stored), address)


def _automatic_times(
    session: Session, address: str, window: timedelta, now: datetime
) -> Iterator[datetime]:
    """Arrival times of the address's automatic mails, newest first, back to the first gap of
    a whole window (a quiet window resets the breaker, so nothing before it matters)."""
    newer = now
    # Read row by row: a customer of long standing has many mails, and mostly only the last
    # window's are needed before the first gap ends the walk.
    with direct(session, _RECENT_MAIL, {"address": address}) as rows:
        for intake_id, received_at, automatic in rows:
            moment = aware(received_at)
            if newer - moment >= window:
                return
            if automatic is None:
                automatic = _stored_verdict(session, intake_id or 0, address)
            if automatic:
                yield moment
                newer = moment


def breakers_ahead(session: Session, ctx: Context, addresses: Iterable[str], now: datetime) -> None:
    """Which of these addresses (a batch's senders) sent automatic mail within the last
    window, by one statement: the breaker of any other is closed, without a walk through
    its mail. noted_mail adds what the batch itself brings."""
    suspects: dict[str, bool] = session.info.setdefault(_SUSPECTS, {})
    wanted = [a for a in dict.fromkeys(a.lower() for a in addresses if a) if a not in suspects]
    if not wanted:
        return
    window = timedelta(minutes=ctx.config.loops.breaker_window_minutes)
    params = {"addresses": wanted, "since": now - window}
    lately = set(direct(session, _AUTOMATIC_LATELY, params).scalars())
    suspects.update({address: address in lately for address in wanted})


def noted_mail(session: Session, address: str, automatic: bool | None) -> None:
    """A mail from the address got its outcome in the transaction (its verdict noted)."""
    suspects: dict[str, bool] | None = session.info.get(_SUSPECTS)
    if suspects is not None and automatic is not False and address in suspects:
        suspects[address] = True


def breaker_open(session: Session, ctx: Context, address: str, now: datetime) -> str | None:
    """Tripped when `breaker_auto_replies` automatic mails from the address fall within one
    window, and still so until a whole window passes without one. Read from stored mail, so
    it holds across restarts and for every instance on the database."""
    if session.info.get(_SUSPECTS, {}).get(address) is False:
        return None  # no automatic mail from it lately: nothing to walk
    needed = ctx.config.loops.breaker_auto_replies
    window = timedelta(minutes=ctx.config.loops.breaker_window_minutes)
    times = list(_automatic_times(session, address, window, now))
    if any(times[i] - times[i + needed - 1] < window for i in range(len(times) - needed + 1)):
        minutes = ctx.config.loops.breaker_window_minutes
        return f"circuit breaker: {address} sent {needed} automatic mails within {minutes} minutes"
    return None


def blocked(session: Session, ctx: Context, address: str) -> str | None:
    """Why no automatic answer may go to the address now, else None."""
    address = (parseaddr(address)[1] or address).strip().lower()
    if is_internal(session, ctx, address):
        return None
    now = ctx.clock()
    if (reason := desk_limited(session, ctx, now)) is not None:
        _log_once(ctx, DESK, reason, now)  # once an hour for the whole desk, not per address
        return reason
    reason = breaker_open(session, ctx, address, now) or rate_limited(session, ctx, address, now)
    if reason is not None:
        _log_once(ctx, address, reason, now)
    return reason


def _log_once(ctx: Context, address: str, reason: str, now: datetime) -> None:
    """One line per address an hour: a loop would otherwise flood the log it is found in."""
    logged = ctx.logged_at
    with _logged_lock:
        last = logged.get(address)
        if last is not None and timedelta(0) <= now - last < RATE_WINDOW:
            return
        logged[address] = now
        if len(logged) > 10_000:  # a long-running daemon: forget addresses long quiet
            for old in [a for a, t in logged.items() if now - t >= RATE_WINDOW]:
                del logged[old]
    log.warning("event=mail_suppressed to=%s reason=%r", address, reason)
