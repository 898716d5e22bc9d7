"""What routing decides a mail becomes, as values: a new ticket, a follow-up, a list of the
sender's requests, ignored or quarantined; and the envelope the intake knew."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Envelope:
    """What the intake knew besides the message: the served address it came in on."""

    served_address: str = ""
    is_comment_address: bool = False


@dataclass(frozen=True)
class NewTicket:
    automatic: str | None = None  # why no acknowledgement may go out
    linked_ticket_id: int | None = None  # the closed ticket this one follows on from
    unverified: str = ""  # the warning a mail marked forged is kept with; it changes nothing
    # The From names no single clean address: the ticket is the unverified sender's
    # (mailgate.unverified), and `unverified` holds the From as received.
    ambiguous_from: bool = False


@dataclass(frozen=True)
class FollowUp:
    ticket_id: int
    direction: str  # customer | staff | internal | system
    note: str = ""
    automatic: str | None = None
    reopen: bool = False
    failing: tuple[str, ...] = ()  # addresses a delivery report says do not take mail
    unverified: str = ""  # as NewTicket's: stored, and nothing else


@dataclass(frozen=True)
class ListRequest:
    """A customer asks for the open tickets they may see (subject `list`, …)."""

    address: str


@dataclass(frozen=True)
class Ignore:
    reason: str
    answer: bool = False  # the sender is told (a polite refusal), unless the mail is automatic


@dataclass(frozen=True)
class Quarantine:
    reason: str


Decision = NewTicket | FollowUp | ListRequest | Ignore | Quarantine
