"""SQLModel tables: customers, agents, tickets and their articles, intake and outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

# Stored-message states (ARCHITECTURE: received -> done | ignored | quarantined).
RECEIVED, DONE, IGNORED, QUARANTINED = "received", "done", "ignored", "quarantined"
# Outbox states.
QUEUED, SENT, FAILED = "queued", "sent", "failed"
STATUSES = ("open", "working", "hold", "delivered", "closed")
OPEN_STATUSES = STATUSES[:-1]  # every status but closed: a ticket still in hand
PRIORITIES = ("A", "B", "C")
TYPES = ("bug", "enhancement", "suggestion", "help")
DIRECTIONS = ("customer", "staff", "internal", "system")
# Organisation kinds. Only a company's members are colleagues: an organisation of one
# sender (personal) or the pool of unassigned senders groups people who are strangers.
# The unverified senders' (mailgate.unverified) is nobody's and is listed nowhere.
COMPANY, PERSONAL, POOL, UNVERIFIED = "company", "personal", "pool", "unverified"


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    responsible_agent_id: int | None = Field(default=None, foreign_key="agent.id")
    support_minutes: int = 0  # contingent bought; billable time uses it up
    kind: str = COMPANY  # company | personal | pool | unverified
    created_at: datetime


class Contingent(SQLModel, table=True):
    """Support time bought (or taken back) for an organisation: its history of packages.
    Organisation.support_minutes is the sum of these rows, kept in step by desk/customers.py."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    minutes: int  # negative for a correction
    note: str = ""
    actor: str = "cli"
    created_at: datetime


class OrganisationDomain(SQLModel, table=True):
    """A mail domain an organisation claims: unknown senders from it join that organisation."""

    domain: str = Field(primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True)  # lower case
    name: str = ""
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    language: str | None = None
    failing: bool = False  # a bounce said this address does not take mail
    opted_out: bool = False  # no optional status mails
    created_at: datetime


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True)
    name: str = ""
    language: str | None = None
    notify: bool = True
    active: bool = True
    created_at: datetime
    # The signature the agent registered (`agents add --signature-file`): cut from their
    # answers. None: learned from `endings`, the last lines of their latest answers (JSON).
    signature: str | None = None
    endings: str = ""


class Counter(SQLModel, table=True):
    """Named sequences that must not repeat under concurrency (ticket numbers)."""

    name: str = Field(primary_key=True)
    value: int


class Ticket(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(index=True, unique=True)
    subject: str
    # Indexed for reports: lists by status, sorting by update, the backlog by resolution.
    status: str = Field(default="open", index=True)
    priority: str = "B"
    type: str | None = None
    category: str | None = None
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    requester_id: int = Field(foreign_key="contact.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    billable: bool = False
    hold_until: datetime | None = None
    source: str  # smtp, imap:<mailbox>, pipe, manual
    served_address: str = ""
    # Indexed: a ticket's page lists the tickets that follow it (a reply long after closing).
    linked_ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    created_at: datetime = Field(index=True)
    updated_at: datetime = Field(index=True)
    last_action_by: str = "customer"  # customer | staff
    last_action_at: datetime = Field(index=True)  # search: newest first, after:
    # Kept on the ticket so that reports over many tickets need no scan of the articles.
    first_response_at: datetime | None = None  # the first staff answer mailed to the customer
    # Went delivered or closed; cleared when work resumes.
    resolved_at: datetime | None = Field(default=None, index=True)
    # A reminder for the current hold or delivered spell went out; cleared on status change.
    reminded_at: datetime | None = None
    sla_notified_at: datetime | None = None  # the assignee was told of a first-response breach


class TicketTally(SQLModel, table=True):
    """Changes to the number of tickets by category and status: +1 for a ticket that came
    into a pair, -1 for one that left it. Written by triggers on ticket (migration 0024), so
    no writer can forget it; a job folds the rows into one a pair (mailgate.store.tally).
    `stats` sums these few rows where it counted a million tickets."""

    __tablename__ = "ticket_tally"

    id: int | None = Field(default=None, primary_key=True)
    category: str | None = None
    status: str
    tickets: int


class Participant(SQLModel, table=True):
    """A contact who receives a ticket's mail besides the requester."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    role: str = "cc"


class Intake(SQLModel, table=True):
    """One received message (its bytes in IntakeRaw); its outcome is filled in by the
    pipeline."""

    # Each holds all a frequent look-up reads (see migration 0010), without the table.
    __table_args__ = (
        # The loop breaker: one sender's recent mail, before each automatic mail.
        Index("ix_intake_sender_recent", "from_addr", "received_at", "status", "automatic"),
        # The duplicate check: the same Message-ID already processed, and its body.
        Index("ix_intake_message_id_outcome", "message_id", "status", "content_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(index=True)
    source: str  # smtp, imap:<mailbox>, pipe, file
    envelope_from: str = ""
    envelope_to: str = ""  # recipients, one per line
    sha256: str = Field(index=True)
    # The body alone, line endings normalised: equal for one message delivered by two paths
    # (their trace headers differ), which is what duplicate detection compares.
    content_sha256: str = ""
    size: int
    status: str = Field(default=RECEIVED, index=True)
    reason: str = ""
    attempts: int = 0
    processed_at: datetime | None = None
    message_id: str = ""
    from_addr: str = ""
    # Whether the loop breaker counts it as automatic mail from from_addr (loops.is_automatic),
    # noted when it is processed. None: processed without the note; the breaker reads its head.
    automatic: bool | None = None
    subject: str = ""
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    article_id: int | None = None
    # The daemon run that processes it in its own process (`workers = 0`), marked before and
    # cleared with the outcome: a mark left by a run that is gone is a death (service/deaths.py).
    in_hand_by: str = ""
    deaths: int = 0  # processes that died with it in hand; reset by `quarantine retry`
    # Its bytes were dropped (retention.py, forget.py): when, and "retention" or "erasure".
    removed_at: datetime | None = None
    removed_by: str = ""


class IntakeRaw(SQLModel, table=True):
    """A received message's bytes, as they came, written once when it is stored. A table of
    their own: on SQLite a row is rewritten whole when any of its columns changes, and the
    outcome of each message is written after it is stored (migration 0011)."""

    __tablename__ = "intake_raw"

    intake_id: int = Field(foreign_key="intake.id", primary_key=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Article(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str  # customer | staff | internal | system
    from_addr: str = ""
    from_name: str = ""
    to_addrs: str = ""  # comma-separated
    cc_addrs: str = ""
    subject: str = ""
    date: datetime | None = None
    message_id: str = Field(default="", index=True)
    text: str = ""
    html: str | None = None
    note: str = ""  # e.g. "unverified sender", "automatic reply"
    intake_id: int | None = Field(default=None, foreign_key="intake.id")
    created_at: datetime


class Blob(SQLModel, table=True):
    """Attachment content, stored once per sha256 under the data directory."""

    sha256: str = Field(primary_key=True)
    size: int
    path: str  # relative to the data directory


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    filename: str
    content_type: str
    size: int
    sha256: str = Field(foreign_key="blob.sha256")
    content_id: str | None = None
    inline: bool = False


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # None: an event of the whole desk (a retention run, a customer forgotten).
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    actor: str  # an address, "system", or "cli"
    action: str  # created, article, status, ...
    detail: str = ""
    created_at: datetime


class Outbox(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    template: str
    envelope_from: str
    to_addrs: str  # comma-separated
    subject: str
    message_id: str
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default=QUEUED, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    last_error: str = ""
    # Indexed: the rate limit counts an hour's automatic mail before each automatic mail.
    created_at: datetime = Field(index=True)
    sent_at: datetime | None = None
    # Its bytes were dropped (raw is empty): when, and "retention" or "erasure".
    removed_at: datetime | None = None
    removed_by: str = ""


class OutboxRecipient(SQLModel, table=True):
    """One envelope recipient of an outgoing mail: the per-address limit on automatic mail
    counts these by address instead of searching every recent mail's recipient list."""

    __tablename__ = "outbox_recipient"
    __table_args__ = (Index("ix_outbox_recipient_address_created_at", "address", "created_at"),)

    outbox_id: int = Field(foreign_key="outbox.id", primary_key=True)
    address: str = Field(primary_key=True)  # lower case
    automatic: bool  # an answer the loop brakes count (see loops.AUTO_ANSWERS)
    created_at: datetime


class ImapState(SQLModel, table=True):
    """Where an IMAP mailbox was read up to: valid only while its UIDVALIDITY is unchanged."""

    __tablename__ = "imap_state"

    mailbox: str = Field(primary_key=True)  # the [[imap]] name
    uidvalidity: int = Field(sa_type=BigInteger)  # up to 2**32 - 1: beyond a 32-bit INTEGER
    last_uid: int = Field(sa_type=BigInteger)  # every message up to here is stored
    updated_at: datetime


class TimeEntry(SQLModel, table=True):
    """Time spent on a ticket: billable time uses up the organisation's support hours."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    minutes: int
    billable: bool = False
    note: str = ""
    created_at: datetime = Field(index=True)  # `report time`: a month's entries


class TicketReference(SQLModel, table=True):
    """A reference number found in a ticket's mail (an order number, say)."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    reference: str = Field(primary_key=True, index=True)


class TicketAgent(SQLModel, table=True):
    """A further agent on a ticket besides the assignee (added with `#cc AGENT`)."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True)


class WebLink(SQLModel, table=True):
    """A link mailed to a person that signs them in to the web desk: its token is kept only
    as a hash, and it is used up by the one sign-in it makes (never by opening it)."""

    __tablename__ = "web_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser: its cookie's token kept as a hash, its form token (CSRF) as it
    is; listed to its owner and revocable."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    form_token: str
    user_agent: str = ""
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A bearer token of the JSON API (`mailgate api-token add`), kept only as a hash. With
    an agent, what it writes on tickets is that agent's; without, it reads and opens tickets."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    token_hash: str = Field(index=True, unique=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
